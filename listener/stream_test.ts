import assert from "node:assert/strict";
import { startListener } from "../testing/listener.ts";
import { sampleEvent, sseEvents, withApp, withTempDir } from "./testing.ts";

const post = (base: string, body: unknown) =>
  fetch(`${base}/ingest`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  }).then((r) => {
    assert.equal(r.status, 200);
    return r.json();
  });

/** Take `n` events from an SSE iterator, failing after a deadline. */
async function take(it: AsyncGenerator<{ id?: string; data: string }>, n: number, ms = 10_000) {
  const out: { id?: string; data: string }[] = [];
  const timer = setTimeout(() => it.return(undefined), ms);
  try {
    while (out.length < n) {
      const r = await it.next();
      if (r.done) throw new Error(`stream ended after ${out.length} of ${n} events`);
      out.push(r.value);
    }
  } finally {
    clearTimeout(timer);
  }
  return out;
}

Deno.test("GET /events/stream (app.request): live events, filtered, as stored lines", async () => {
  await withApp(async ({ app }) => {
    const ac = new AbortController();
    const res = await app.request("/events/stream?proto=udp", { signal: ac.signal });
    assert.equal(res.headers.get("content-type"), "text/event-stream");
    const it = sseEvents(res.body!);
    const udp = sampleEvent({ proto: "udp", port: 53 });
    await app.request("/ingest", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify([sampleEvent({ proto: "tcp" }), udp]),
    });
    const [e] = await take(it, 1);
    assert.equal(e.id, udp.id);
    assert.equal(JSON.parse(e.data).port, 53);
    ac.abort();
    await it.return(undefined);
  });
});

Deno.test("GET /events/stream over real HTTP: a client that reconnects with Last-Event-ID misses nothing", async () => {
  await withTempDir(async (dir) => {
    const l = await startListener(`${dir}/p.log`, { env: { LISTENER_FSYNC: "0" } });
    try {
      const first = Array.from({ length: 3 }, (_, i) => sampleEvent({ port: 100 + i }));
      const ac = new AbortController();
      const res = await fetch(`${l.url}/events/stream`, { signal: ac.signal });
      const it = sseEvents(res.body!);
      await post(l.url, first);
      const got = await take(it, 3);
      assert.deepEqual(got.map((e) => e.id), first.map((e) => e.id));
      ac.abort();
      await it.return(undefined).catch(() => {});

      // While the client is away, more events arrive.
      const missed = Array.from({ length: 4 }, (_, i) => sampleEvent({ port: 200 + i }));
      await post(l.url, missed);
      const res2 = await fetch(`${l.url}/events/stream`, { headers: { "Last-Event-ID": got[2].id! } });
      const it2 = sseEvents(res2.body!);
      const later = sampleEvent({ port: 300 });
      const resumed = await take(it2, 4);
      await post(l.url, later);
      const live = await take(it2, 1);
      assert.deepEqual([...resumed, ...live].map((e) => JSON.parse(e.data).port), [200, 201, 202, 203, 300]);
      await it2.return(undefined).catch(() => {});
      await res2.body?.cancel().catch(() => {});
    } finally {
      await l.stop();
    }
  });
});

Deno.test("listener process: resume by id survives a listener restart (ids are read back from the log)", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/p.log`;
    let l = await startListener(path, { env: { LISTENER_FSYNC: "1" } });
    const evs = Array.from({ length: 5 }, (_, i) => sampleEvent({ port: 400 + i }));
    try {
      await post(l.url, evs);
    } finally {
      await l.stop();
    }
    l = await startListener(path, { env: { LISTENER_FSYNC: "1" } });
    try {
      const again = await post(l.url, evs);
      assert.deepEqual([again.stored, again.duplicates], [0, 5]);
      const res = await fetch(`${l.url}/events/stream?last_event_id=${evs[1].id}`);
      const it = sseEvents(res.body!);
      const got = await take(it, 3);
      assert.deepEqual(got.map((e) => JSON.parse(e.data).port), [402, 403, 404]);
      await it.return(undefined).catch(() => {});
      await res.body?.cancel().catch(() => {});
    } finally {
      await l.stop();
    }
  });
});
