import assert from "node:assert/strict";
import type { Hono } from "hono";
import { uuidv7 } from "../events/id.ts";
import { parsePolicy } from "../policy/load.ts";
import { learningPolicy } from "../policy/testing.ts";
import { createApp } from "./app.ts";
import { EventStore } from "./file/store.ts";
import type { Store } from "./store_api.ts";
import { sampleEvent, storeOptions, withTempDir } from "./testing.ts";
import { Verdicts } from "./verdicts.ts";
import { freshDatabase, postgresSkipReason, startPostgres } from "./pg/testing.ts";
import { PgStore } from "./pg/store.ts";

const pgSkip = postgresSkipReason();
if (pgSkip) console.log(`verdicts_test.ts: the PostgreSQL cases are skipped: ${pgSkip}`);

const POLICY = parsePolicy(learningPolicy("1h"));
const HOUR = 3600_000;

/** A listener over `store` at the time `clock.now`. */
async function judgeApp(store: Store, clock: { now: number }, refreshMs?: number) {
  const verdicts = new Verdicts({
    policy: () => POLICY,
    store: store.baselines,
    now: () => clock.now,
    refreshMs,
  });
  await verdicts.start();
  return { verdicts, app: createApp(store, { bodyLimit: 1 << 20, verdicts }) };
}

const nginx = (port: number, over: Record<string, unknown> = {}) =>
  sampleEvent({ id: uuidv7(), port, image: "nginx:1.25", host: "edge-1", ...over });

async function post(app: Hono, ...events: Record<string, unknown>[]): Promise<Record<string, unknown>[]> {
  const res = await app.request("/ingest", {
    method: "POST",
    headers: { "content-type": "application/x-ndjson" },
    body: events.map((e) => JSON.stringify(e)).join("\n") + "\n",
  });
  assert.equal(res.status, 200, await res.clone().text());
  const ids = new Set(events.map((e) => e.id));
  const stored = (await (await app.request("/events?limit=1000")).json()).events as Record<string, unknown>[];
  return stored.filter((e) => ids.has(e.id)).reverse();
}

const verdictOf = (e: Record<string, unknown>) =>
  (e.policy as { verdict: string; rule: string | null }).verdict;

/** Learning, then a new port; list, export, reset; the baseline outlives the store (`reopen`). */
async function learningThenNewPort(open: () => Promise<Store>): Promise<void> {
  const clock = { now: Date.parse("2026-12-08T00:00:00Z") };
  let store = await open();
  try {
    const { app } = await judgeApp(store, clock);
    const [first, second] = await post(app, nginx(80), nginx(443));
    assert.deepEqual(first.policy, {
      verdict: "allow",
      rule: "baseline",
      description: "learning image nginx:1.25 on host edge-1 until 2026-12-08T01:00:00.000Z",
    });
    assert.equal(verdictOf(second), "allow");
    // A rule decides before the baseline, in the window too.
    const [dbg] = await post(app, nginx(9229));
    assert.deepEqual(dbg.policy, { verdict: "alert", rule: "no-node-debugger", severity: "critical" });

    clock.now += 2 * HOUR;
    const [again, fresh] = await post(app, nginx(443, { event: "change", last_pids: [1] }), nginx(8080));
    assert.deepEqual(again.policy, { verdict: "allow", rule: "baseline" });
    assert.equal(verdictOf(fresh), "alert");
    assert.match(
      (fresh.policy as { description: string }).description,
      /tcp\/8080 was not open in image nginx/,
    );

    const unexpected = await (await app.request("/ports?unexpected=1")).json();
    assert.deepEqual(unexpected.ports.map((p: { port: number }) => p.port).sort(), [8080, 9229]);
    assert.equal((await (await app.request("/ports?unexpected=0")).json()).count, 4);
    const bad = await app.request("/ports?unexpected=maybe");
    assert.equal(bad.status, 400);
    assert.match(await bad.text(), /unexpected: 1 or 0/);

    const listed = await (await app.request("/baselines")).json();
    assert.equal(listed.count, 1);
    assert.deepEqual(listed.scopes[0].ports, ["tcp/80", "tcp/443"]);
    assert.equal(listed.scopes[0].learning, false);
    assert.equal(listed.learn.window, "1h");
    const yaml = await (await app.request("/baselines/export")).text();
    const exported = parsePolicy(yaml, "export.yaml");
    assert.equal(exported.verdictOf(nginx(443) as never).verdict, "allow");
    assert.equal(exported.verdictOf(nginx(8080) as never).verdict, "alert");
  } finally {
    await store.close();
  }

  // Reopened: the baseline is still there (after its window: 80 expected, 8081 new).
  store = await open();
  try {
    const { app } = await judgeApp(store, clock);
    const [known, unknown] = await post(app, nginx(80), nginx(8081));
    assert.equal(verdictOf(known), "allow");
    assert.equal(verdictOf(unknown), "alert");

    const missing = await app.request("/baselines", { method: "DELETE" });
    assert.equal(missing.status, 400);
    assert.match(await missing.text(), /\?scope=<key>.*\?all=1/);
    const nope = await app.request("/baselines?scope=image:nope@x", { method: "DELETE" });
    assert.equal(nope.status, 404);
    const reset = await (await app.request("/baselines?scope=image:nginx:1.25@edge-1", { method: "DELETE" }))
      .json();
    assert.deepEqual(reset, { ok: true, count: 1, reset: ["image:nginx:1.25@edge-1"] });
    const [relearned] = await post(app, nginx(8082));
    assert.match((relearned.policy as { description: string }).description, /^learning/);
  } finally {
    await store.close();
  }
}

Deno.test("verdicts: learning, then a new port is unexpected; list, export, reset; kept across a restart (file store)", async () => {
  await withTempDir(async (dir) => {
    await learningThenNewPort(async () => (await EventStore.open(storeOptions(dir))).store);
    const file = JSON.parse(await Deno.readTextFile(`${dir}/baselines.json`));
    assert.equal(file.version, 1);
    assert.deepEqual(file.ports.map((p: { port: number }) => p.port), [8082]);
  });
});

Deno.test("verdicts: a corrupt baselines file is refused with its path and what to do", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/baselines.json`, "{nope");
    const { store } = await EventStore.open(storeOptions(dir));
    try {
      const verdicts = new Verdicts({ policy: () => POLICY, store: store.baselines });
      await assert.rejects(verdicts.start(), /baselines\.json is not a baselines file .*move it away/);
    } finally {
      await store.close();
    }
  });
});

Deno.test({
  name: "verdicts: learning, then a new port; replicas share what they learned (PostgreSQL store)",
  ignore: pgSkip !== undefined,
  async fn(t) {
    await using pg = await startPostgres();
    const open = async (url: string) =>
      (await PgStore.open({ url, retentionDays: 0, pollMs: 200, startTimeoutMs: 5000 })).store;

    await t.step("learning, list, export, reset, restart", async () => {
      const url = await freshDatabase(pg);
      await learningThenNewPort(() => open(url));
    });

    await t.step("a port one replica learned is not new to another whose copy is stale", async () => {
      const url = await freshDatabase(pg);
      const a = await open(url);
      const b = await open(url);
      try {
        const clock = { now: Date.parse("2026-12-08T00:00:00Z") };
        const ra = await judgeApp(a, clock, 3_600_000);
        const rb = await judgeApp(b, clock, 3_600_000); // never refreshes by itself in this test
        await post(ra.app, nginx(80));
        // B starts its own window a minute later: the stored (first) one wins.
        clock.now += 60_000;
        await post(rb.app, nginx(443));
        assert.deepEqual(rb.verdicts.list().map((s) => s.started_at), ["2026-12-08T00:00:00.000Z"]);
        clock.now += 2 * HOUR;
        const [fromA, fromB, fresh] = await post(rb.app, nginx(80), nginx(443), nginx(8080));
        assert.equal(verdictOf(fromA), "allow", "learned through replica A");
        assert.equal(verdictOf(fromB), "allow");
        assert.equal(verdictOf(fresh), "alert");
      } finally {
        await a.close();
        await b.close();
      }
    });
  },
});
