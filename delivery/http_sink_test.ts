import assert from "node:assert/strict";
import { HttpSink, type HttpSinkOptions, ingestUrl } from "./http_sink.ts";
import type { PortEvent } from "../events/schema.ts";
import { forward, loggedIds, type PeerAction, scriptedPeer, startListener } from "../testing/listener.ts";
import { freePort } from "../testing/port.ts";
import { waitUntil } from "../infra/wait.ts";

/** A temp dir with `spool/` and `listener.log` paths, removed afterwards. */
async function withDir(
  fn: (d: { dir: string; spoolDir: string; logPath: string }) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "portwatch-sink-" });
  try {
    await fn({ dir, spoolDir: `${dir}/spool`, logPath: `${dir}/listener.log` });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

let n = 0;
function events(count: number, over: Record<string, unknown> = {}): PortEvent[] {
  return Array.from({ length: count }, () => {
    n++;
    return {
      id: `0190a000-0000-7000-8000-${String(n).padStart(12, "0")}`,
      event: "open",
      port: 1000 + n,
      proto: "tcp",
      family: 4,
      addrs: ["0.0.0.0"],
      pids: [100 + n],
      container_id: null,
      container_name: null,
      source: "polling",
      observed_at: new Date().toISOString(),
      host: "test-host",
      netns: 4026531840,
      ...over,
    } as PortEvent;
  });
}
const ids = (es: PortEvent[]) => es.map((e) => e.id);

const FAST = { backoff: { baseMs: 10, capMs: 100 }, timeoutMs: 1_000, fsync: false };
function open(url: string, spoolDir: string, over: Partial<HttpSinkOptions> = {}): Promise<HttpSink> {
  return HttpSink.open({ url, spoolDir, ...FAST, ...over });
}

Deno.test("ingestUrl accepts a base URL or the ingest URL", () => {
  assert.equal(ingestUrl("http://h:8080").href, "http://h:8080/ingest");
  assert.equal(ingestUrl("http://h:8080/").href, "http://h:8080/ingest");
  assert.equal(ingestUrl("http://h:8080/ingest").href, "http://h:8080/ingest");
  assert.equal(ingestUrl("http://h/portwatch/").href, "http://h/portwatch/ingest");
});

Deno.test("HttpSink delivers to a running listener directly, nothing spooled", async () => {
  await withDir(async ({ spoolDir, logPath }) => {
    const listener = await startListener(logPath);
    const sink = await open(listener.url, spoolDir);
    try {
      const a = events(3);
      const b = events(2);
      await sink.send(a);
      await sink.send(b);
      await sink.send([]);
      assert.deepEqual(await loggedIds(logPath), ids([...a, ...b]), "a 2xx means stored");
      assert.equal(await sink.flush(1_000), true);
      const s = sink.stats;
      assert.equal(s.sent, 5);
      assert.equal(s.spooled, 0);
      assert.equal(s.spoolDepth, 0);
    } finally {
      await sink.close();
      await listener.stop();
    }
    await assert.rejects(sink.send(events(1)), /closed/);
  });
});

Deno.test("HttpSink: listener down then up (and SIGKILLed, then back): spooled, drained in order, once each", async () => {
  await withDir(async ({ spoolDir, logPath }) => {
    const port = freePort();
    const sink = await open(`http://127.0.0.1:${port}/ingest`, spoolDir, { batchMaxEvents: 3 });
    let listener;
    try {
      const early = [events(4), events(1), events(5)];
      for (const b of early) await sink.send(b); // nothing listens yet: each resolves once spooled
      assert.equal(sink.stats.spooled, 10);
      assert.equal(sink.stats.sent, 0);
      assert.ok(sink.stats.retries >= 1);
      assert.equal(await sink.flush(50), false, "nothing can drain yet");

      listener = await startListener(logPath, { port });
      await waitUntil("the spool to drain", () => sink.stats.spoolDepth === 0);
      assert.deepEqual(await loggedIds(logPath), ids(early.flat()), "in order, each once");

      const live = events(2);
      await sink.send(live);
      assert.equal(sink.stats.spooled, 10, "live sends go straight out again");
      assert.deepEqual((await loggedIds(logPath)).slice(-2), ids(live));

      await listener.kill9();
      listener = undefined;
      const during = [events(2), events(3)];
      for (const b of during) await sink.send(b);
      assert.equal(sink.stats.spoolDepth, 5);

      listener = await startListener(logPath, { port });
      assert.equal(await sink.flush(10_000), true);
      const all = ids([...early.flat(), ...live, ...during.flat()]);
      assert.deepEqual(await loggedIds(logPath), all);
      assert.equal(new Set(await loggedIds(logPath)).size, all.length);
    } finally {
      await sink.close();
      await listener?.stop();
    }
  });
});

Deno.test("HttpSink: a stored batch whose answer is lost is retried and stored once", async () => {
  await withDir(async ({ spoolDir, logPath }) => {
    const listener = await startListener(logPath);
    let drops = 2;
    const peer = scriptedPeer(async (req): Promise<PeerAction> => {
      const answer = await forward(listener.url, req); // the listener stores it...
      if (drops > 0) {
        drops--;
        return "drop"; // ...but the answer never reaches the watcher
      }
      return answer;
    });
    const sink = await open(peer.url, spoolDir);
    try {
      const a = events(3);
      const b = events(2);
      await sink.send(a); // stored, answer lost: spooled
      await sink.send(b); // behind it, in the spool
      assert.ok(await sink.flush(5_000));
      assert.deepEqual(await loggedIds(logPath), ids([...a, ...b]), "each id exactly once");
      assert.ok(sink.stats.duplicates >= 3, `duplicates ${sink.stats.duplicates}`);
      assert.equal(sink.stats.deadLettered, 0);
    } finally {
      await sink.close();
      await peer.close();
      await listener.stop();
    }
  });
});

Deno.test("HttpSink: a watcher restart mid-drain: a new sink on the same spool delivers the rest", async () => {
  await withDir(async ({ spoolDir, logPath }) => {
    const listener = await startListener(logPath);
    let mode: "fail" | "one" | "forward" = "fail";
    const peer = scriptedPeer(async (req): Promise<PeerAction> => {
      if (mode === "fail") return { status: 503, body: `{"ok":false,"error":"down"}` };
      if (mode === "one") mode = "fail";
      return await forward(listener.url, req);
    });
    const all = events(7);
    const first = await open(peer.url, spoolDir, { batchMaxEvents: 2 });
    try {
      await first.send(all.slice(0, 4));
      await first.send(all.slice(4));
      assert.equal(first.stats.spoolDepth, 7);
      mode = "one"; // one batch gets through, then the listener fails again
      await waitUntil("one batch delivered and acknowledged", () => first.stats.spoolDepth === 5);
      assert.equal((await loggedIds(logPath)).length, 2);
    } finally {
      await first.close(); // the watcher stops with events left
    }
    mode = "forward";
    const second = await open(peer.url, spoolDir, { batchMaxEvents: 2 });
    try {
      assert.equal(second.stats.spoolDepth, 5);
      const more = events(1);
      await second.send(more); // goes behind the backlog
      assert.ok(await second.flush(5_000));
      assert.deepEqual(await loggedIds(logPath), ids([...all, ...more]));
    } finally {
      await second.close();
      await peer.close();
      await listener.stop();
    }
  });
});

Deno.test("HttpSink: 422 goes to the dead-letter file, the rest of the batch and later batches flow", async () => {
  await withDir(async ({ spoolDir, logPath }) => {
    const listener = await startListener(logPath);
    const sink = await open(listener.url, spoolDir);
    try {
      const [good1, good2] = events(2);
      const [bad] = events(1, { port: 70000 });
      const later = events(3);
      await sink.send([good1, bad, good2]);
      await sink.send(later);
      assert.deepEqual(await loggedIds(logPath), ids([good1, good2, ...later]));
      const dead = (await Deno.readTextFile(sink.spool.deadLetterPath)).trim().split("\n").map((l) =>
        JSON.parse(l)
      );
      assert.equal(dead.length, 1);
      assert.equal(dead[0].status, 422);
      assert.equal(dead[0].event.id, bad.id);
      assert.match(dead[0].error, /port/);
      assert.equal(sink.stats.deadLettered, 1);
      assert.equal(sink.stats.spoolDepth, 0);
    } finally {
      await sink.close();
      await listener.stop();
    }
  });
});

Deno.test("HttpSink: 413 splits the batch in halves; a single oversized event is dead-lettered", async () => {
  await withDir(async ({ spoolDir, logPath }) => {
    const listener = await startListener(logPath, { args: ["--body-limit", "1024"] });
    const sink = await open(listener.url, spoolDir);
    try {
      const batch = events(8); // ~2.6 KB as NDJSON, over the 1 KiB limit
      await sink.send(batch);
      assert.deepEqual(await loggedIds(logPath), ids(batch));
      const [huge] = events(1, { note: "x".repeat(2000) });
      const after = events(1);
      await sink.send([huge, ...after]);
      assert.deepEqual((await loggedIds(logPath)).slice(-1), ids(after));
      assert.equal(sink.stats.deadLettered, 1);
      assert.match(await Deno.readTextFile(sink.spool.deadLetterPath), /"status":413/);
    } finally {
      await sink.close();
      await listener.stop();
    }
  });
});

Deno.test("HttpSink: Retry-After on 503 and 429 is honoured", async () => {
  await withDir(async ({ spoolDir }) => {
    const stored: string[] = [];
    const peer = scriptedPeer((req): PeerAction => {
      if (req.n === 1) {
        return { status: 503, headers: { "retry-after": "1" }, body: `{"ok":false,"error":"disk"}` };
      }
      if (req.n === 2) {
        return { status: 429, headers: { "retry-after": "1" }, body: `{"ok":false,"error":"slow"}` };
      }
      const got = req.body.trim().split("\n").map((l) => JSON.parse(l).id);
      stored.push(...got);
      return { status: 200, body: JSON.stringify({ ok: true, stored: got.length, duplicates: 0, ids: got }) };
    });
    const sink = await open(peer.url, spoolDir);
    try {
      const batch = events(2);
      await sink.send(batch);
      assert.equal(sink.stats.spoolDepth, 2);
      assert.equal(await sink.flush(100), false, "flush does not cut a server's Retry-After short");
      await waitUntil("delivery after two Retry-Afters", () => stored.length === 2, 5_000);
      const [r1, r2, r3] = peer.requests;
      assert.ok(r2.at - r1.at >= 990, `503 retry came after ${r2.at - r1.at} ms`);
      assert.ok(r3.at - r2.at >= 990, `429 retry came after ${r3.at - r2.at} ms`);
      assert.deepEqual(stored, ids(batch));
      assert.equal(r1.headers.get("content-type"), "application/x-ndjson");
    } finally {
      await sink.close();
      await peer.close();
    }
  });
});

Deno.test("HttpSink: a wrong token keeps events spooled (not dead-lettered); a hung listener times out", async () => {
  await withDir(async ({ spoolDir, logPath }) => {
    const listener = await startListener(logPath, { env: { LISTENER_TOKEN: "right" } });
    const sink = await open(listener.url, spoolDir, { token: "wrong" });
    try {
      await sink.send(events(2));
      assert.equal(sink.stats.spoolDepth, 2);
      assert.equal(sink.stats.deadLettered, 0);
      assert.match(sink.stats.lastError ?? "", /401.*LISTENER_TOKEN/);
    } finally {
      await sink.close();
      await listener.stop();
    }
    const good = await open(listener.url, spoolDir, { token: "right" });
    await good.close(); // reopening the spool keeps the 2 events
    let release!: () => void;
    const released = new Promise<void>((r) => release = r);
    const peer = scriptedPeer(async (): Promise<PeerAction> => {
      await released;
      return "drop";
    });
    const slow = await open(peer.url, spoolDir, { timeoutMs: 200 });
    try {
      assert.equal(slow.stats.spoolDepth, 2);
      const t0 = Date.now();
      assert.equal(await slow.flush(300), false);
      assert.ok(Date.now() - t0 < 1_000);
      assert.match(slow.stats.lastError ?? "", /no answer within 200 ms/);
    } finally {
      await slow.close();
      release();
      await peer.close();
    }
  });
});

Deno.test("HttpSink: a send about other ports goes out beside a slow one; a send about the same port waits", async () => {
  await withDir(async ({ spoolDir }) => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const answered: string[] = [];
    const peer = scriptedPeer(async (req): Promise<PeerAction> => {
      const got = req.body.trim().split("\n").map((l) => JSON.parse(l).id as string);
      if (req.n === 1) await held; // the first batch's answer is slow
      answered.push(...got);
      return { status: 200, body: JSON.stringify({ ok: true, stored: got.length, duplicates: 0, ids: got }) };
    });
    const sink = await open(peer.url, spoolDir);
    try {
      const a = events(2);
      const b = events(2);
      const c = events(1, { event: "close", port: a[1].port }); // a port of the first batch
      const sentA = sink.send(a);
      await waitUntil("the first POST", () => peer.requests.length === 1, 5_000);
      const sentC = sink.send(c);
      await sink.send(b); // delivered while the first is still unanswered
      assert.deepEqual(answered, ids(b));
      assert.equal(peer.requests.length, 2, "the close of a's port is not sent before a is answered");
      release();
      await sentA;
      await sentC;
      assert.deepEqual(answered, [...ids(b), ...ids(a), ...ids(c)]);
      assert.equal(sink.stats.spoolDepth, 0);
    } finally {
      release();
      await sink.close();
      await peer.close();
    }
  });
});
