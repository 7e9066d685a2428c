import assert from "node:assert/strict";
import { NODE_DEBUGGER_POLICY } from "../policy/testing.ts";
import { createApp } from "./app.ts";
import { EventStore } from "./file/store.ts";
import { storeOptions, withTempDir } from "./testing.ts";
import { parsePolicy } from "../policy/load.ts";
import { Verdicts } from "./verdicts.ts";

const POLICY = parsePolicy(NODE_DEBUGGER_POLICY);

const event = (id: string, over: Record<string, unknown>) => ({
  id,
  event: "open",
  port: 9229,
  proto: "tcp",
  family: 4,
  addrs: ["0.0.0.0"],
  pids: [7],
  container_id: null,
  container_name: null,
  source: "ebpf",
  observed_at: "2026-12-08T00:00:00.000Z",
  host: "h1",
  netns: 1,
  ...over,
});

Deno.test("policy verdicts on ingest: opens and changes carry theirs (NDJSON fast path and JSON), closes none", async () => {
  await withTempDir(async (dir) => {
    const { store } = await EventStore.open(storeOptions(dir));
    try {
      const app = createApp(store, {
        bodyLimit: 1 << 20,
        verdicts: new Verdicts({ policy: () => POLICY, store: store.baselines }),
      });
      const lines = [
        event("01a25351-0000-7000-8000-000000000001", {}),
        event("01a25351-0000-7000-8000-000000000002", { port: 3000 }),
        event("01a25351-0000-7000-8000-000000000003", { event: "close", pids: [], last_pids: [7] }),
        // a client's own verdict is replaced
        event("01a25351-0000-7000-8000-000000000004", {
          event: "change",
          last_pids: [7],
          pids: [8],
          policy: { verdict: "allow", rule: "forged" },
        }),
      ];
      const res = await app.request("/ingest", {
        method: "POST",
        headers: { "content-type": "application/x-ndjson" },
        body: lines.map((l) => JSON.stringify(l)).join("\n") + "\n",
      });
      assert.equal(res.status, 200, await res.clone().text());
      const json = await app.request("/ingest", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(event("01a25351-0000-7000-8000-000000000005", { addrs: ["::"] })),
      });
      assert.equal(json.status, 200);
      const stored = (await (await app.request("/events?limit=10")).json()).events as Record<
        string,
        unknown
      >[];
      const byId = new Map(stored.map((e) => [String(e.id).slice(-1), e.policy]));
      const alert = { verdict: "alert", rule: "no-node-debugger", severity: "critical" };
      assert.deepEqual(byId.get("1"), alert);
      assert.deepEqual(byId.get("2"), { verdict: "allow", rule: null });
      assert.equal(byId.get("3"), undefined, "a close gets no verdict");
      assert.deepEqual(byId.get("4"), alert);
      assert.deepEqual(byId.get("5"), alert);
      // and the log's lines are valid JSON with one policy each
      const log = await Deno.readTextFile(`${dir}/portwatcher.log`);
      for (const line of log.trim().split("\n")) {
        assert.ok((line.match(/"policy":/g) ?? []).length <= 1, line);
        JSON.parse(line);
      }
    } finally {
      await store.close();
    }
  });
});

Deno.test("policy verdicts on ingest: no policy, no field", async () => {
  await withTempDir(async (dir) => {
    const { store } = await EventStore.open(storeOptions(dir));
    try {
      const app = createApp(store, {
        bodyLimit: 1 << 20,
        verdicts: new Verdicts({ policy: () => undefined, store: store.baselines }),
      });
      const res = await app.request("/ingest", {
        method: "POST",
        headers: { "content-type": "application/x-ndjson" },
        body: JSON.stringify(event("01a25351-0000-7000-8000-000000000009", {})) + "\n",
      });
      assert.equal(res.status, 200);
      const stored = (await (await app.request("/events?limit=1")).json()).events;
      assert.equal(stored[0].policy, undefined);
    } finally {
      await store.close();
    }
  });
});
