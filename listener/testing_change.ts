/**
 * One scenario of `change` events through the HTTP API, for both stores (app_test.ts over the file store,
 * pg/store_test.ts over PostgreSQL): what `/ports`, `/events` and the stream must show when a port that stays
 * open changes holders or addresses.
 * @module
 */
import assert from "node:assert/strict";
import type { Hono } from "hono";
import { sseEvents } from "./testing.ts";
import { waitUntil } from "../infra/wait.ts";

type Make = (over: Record<string, unknown>) => Record<string, unknown>;

const json = (body: unknown): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});

async function ingest(app: Hono, body: unknown): Promise<void> {
  const res = await app.request("/ingest", json(body));
  const answer = await res.json();
  assert.equal(res.status, 200, JSON.stringify(answer));
}

/** Take `n` events from an SSE iterator; fails when the stream ends or after `ms`. */
async function take(
  it: AsyncGenerator<{ id?: string; data: string }>,
  n: number,
  ms = 10_000,
): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  const timer = setTimeout(() => it.return(undefined), ms);
  try {
    while (out.length < n) {
      const r = await it.next();
      if (r.done) throw new Error(`the stream ended after ${out.length} of ${n} events`);
      out.push(JSON.parse(r.value.data));
    }
  } finally {
    clearTimeout(timer);
  }
  return out;
}

const base = Date.parse("2026-11-25T08:00:00Z");
/** A watcher time `s` seconds after the scenario's start. */
export const at = (s: number): string => new Date(base + s * 1000).toISOString();

/**
 * Run the scenario on `app` (over a fresh store, whose live subscribers `subscribers` counts): `make` builds
 * a complete event from the fields given (the store's kind of id). Asserts as it goes.
 */
export async function changeScenario(app: Hono, subscribers: () => number, make: Make): Promise<void> {
  const key = { host: "n1", container_id: "dddddddddddd0001", container_name: "api", proto: "tcp" };
  const ports = async (q: string) => (await (await app.request(`/ports?${q}`)).json()).ports;
  const ids = async (q: string) =>
    (await (await app.request(`/events?order=asc&${q}`)).json()).events.map((e: { id: string }) => e.id);

  // The live stream, filtered to the port, open before anything is stored.
  const ac = new AbortController();
  const res = await app.request("/events/stream?port=7100", { signal: ac.signal });
  const it = sseEvents(res.body!);
  await waitUntil("the stream's subscription", () => subscribers() === 1);

  // A port opens; a forked child takes its socket over and it binds a second address.
  const open = make({ ...key, port: 7100, observed_at: at(1), pids: [100], addrs: ["0.0.0.0"] });
  await ingest(app, open);
  const change = make({
    ...key,
    event: "change",
    port: 7100,
    observed_at: at(2),
    pids: [101],
    last_pids: [100],
    addrs: ["0.0.0.0", "::"],
    last_addrs: ["0.0.0.0"],
    process: { pid: 101, comm: "worker", cmdline: "worker --child", uid: 0 },
  });
  try {
    await ingest(app, change);
    let [p] = await ports("port=7100");
    assert.deepEqual(
      [p.pids, p.addrs, p.since, p.event_id, (p.process as { pid: number }).pid],
      [[101], ["0.0.0.0", "::"], at(1), change.id, 101],
      "after a change: the new holders and addresses, still open since the open",
    );
    assert.deepEqual((await take(it, 2)).map((e) => [e.id, e.event]), [[open.id, "open"], [
      change.id,
      "change",
    ]]);

    // A second holder (a SO_REUSEPORT twin), then a close: the close closes it, whatever came before.
    const twin = make({
      ...key,
      event: "change",
      port: 7100,
      observed_at: at(3),
      pids: [101, 102],
      last_pids: [101],
      addrs: ["0.0.0.0", "::"],
      last_addrs: ["0.0.0.0", "::"],
    });
    await ingest(app, twin);
    [p] = await ports("container=api&port=7100");
    assert.deepEqual([p.pids, p.since], [[101, 102], at(1)]);
    const close = make({
      ...key,
      event: "close",
      port: 7100,
      observed_at: at(4),
      pids: [],
      last_pids: [101, 102],
      addrs: ["0.0.0.0", "::"],
    });
    await ingest(app, close);
    assert.deepEqual(await ports("port=7100"), [], "a close after changes closes the port");
    assert.deepEqual(
      (await take(it, 2)).map((e) => [e.event, e.pids, e.last_pids]),
      [["change", [101, 102], [101]], ["close", [], [101, 102]]],
    );
    assert.deepEqual(await ids("event=change&port=7100"), [change.id, twin.id], "/events?event=change");
    assert.deepEqual(await ids("event=open&port=7100"), [open.id]);
    assert.deepEqual(await ids("event=close&port=7100"), [close.id]);
  } finally {
    ac.abort();
    await it.return(undefined);
  }

  // Open and change in one request: open since the open, holders of the change.
  await ingest(app, [
    make({ ...key, port: 7101, observed_at: at(5), pids: [200] }),
    make({ ...key, event: "change", port: 7101, observed_at: at(6), pids: [201], last_pids: [200] }),
  ]);
  const [both] = await ports("port=7101");
  assert.deepEqual([both.pids, both.since], [[201], at(5)]);

  // A change about a port not known to be open (its open was missed): it is open, since the change.
  await ingest(
    app,
    make({ ...key, event: "change", port: 7102, observed_at: at(7), pids: [301], last_pids: [300] }),
  );
  const [missed] = await ports("port=7102");
  assert.deepEqual([missed.pids, missed.since], [[301], at(7)]);

  // A shutdown close (the watcher stopping) closes a changed port too.
  await ingest(
    app,
    make({
      ...key,
      event: "close",
      port: 7101,
      observed_at: at(8),
      source: "shutdown",
      pids: [],
      last_pids: [201],
    }),
  );
  assert.deepEqual((await ports("container=api")).map((p: { port: number }) => p.port), [7102]);
}
