import assert from "node:assert/strict";
import { EventEngine } from "./event_engine.ts";
import type { SocketEventSource } from "./event_source.ts";
import type { SocketEvent } from "./socket_event.ts";
import { listenEvent } from "./testing/socket_events.ts";
import { envOf } from "../infra/env.ts";
import { elapse, waitUntil } from "../infra/wait.ts";
import { CollectingSink } from "../testing/sink.ts";
import { loadWatcherConfig, type WatcherConfig } from "../watcher/config.ts";
import { netnsInode } from "../pipeline/scope/identity.ts";
import { loadSnapshot } from "../pipeline/snapshot.ts";
import { PortTracker } from "../pipeline/tracker.ts";
import { Reporter } from "../pipeline/reporter.ts";

/** A source the test drives: events go to the engine when the test says. */
export class FakeSource implements SocketEventSource {
  readonly name = "fake";
  readonly ready = Promise.resolve();
  lost = 0;
  #onEvent?: (e: SocketEvent) => void;
  #onBehind?: () => void;
  #stop?: () => void;
  constructor(readonly gatherMs?: number, readonly reorderMs?: number) {}
  run(onEvent: (e: SocketEvent) => void, onBehind?: () => void): Promise<string> {
    this.#onEvent = onEvent;
    this.#onBehind = onBehind;
    return new Promise((resolve) => (this.#stop = () => resolve("stopped")));
  }
  emit(...events: SocketEvent[]): void {
    for (const e of events) this.#onEvent!(e);
  }
  /** Say that what was just emitted came from a backlog. */
  behind(): void {
    this.#onBehind?.();
  }
  stop(): Promise<void> {
    this.#stop?.();
    return Promise.resolve();
  }
}

/** Ports nothing on a test machine listens on (WATCH_PORTS keeps the seed scan to them). */
export const TEST_PORTS = [61231, 61232, 61233];

/** A config for an engine in this namespace, watching only TEST_PORTS. */
export function testConfig(snapshotPath: string): WatcherConfig {
  const c = loadWatcherConfig([], envOf({ WATCH_PORTS: TEST_PORTS.join(","), SNAPSHOT_PATH: snapshotPath }));
  if (c === "help") throw new Error("help");
  return c;
}

/**
 * An engine over `source` delivering to `sink`, its snapshot `snap` in a temp dir given to `fn` (no
 * reconciliation); shut down, and the dir removed, after `fn`.
 */
async function withEngine(
  source: FakeSource,
  sink: CollectingSink,
  fn: (engine: EventEngine, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  const engine = new EventEngine({
    config: testConfig(`${dir}/snap`),
    sink,
    env: envOf({}),
    source,
    reconcileMs: 3600_000,
  });
  try {
    await engine.start();
    const running = engine.run();
    await fn(engine, dir);
    await source.stop();
    await running;
  } finally {
    await engine.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("EventEngine: a snapshot written while a batch gathers leaves it out: after a crash then, the restart sends it", async () => {
  const sink = new CollectingSink();
  // A long gather: the window between the tracker deciding and the batch reaching the outbox stays open.
  const source = new FakeSource(60_000);
  await withEngine(source, sink, async (engine, dir) => {
    const path = `${dir}/snap`;
    const [a, b] = TEST_PORTS;
    source.emit(listenEvent(a, 1));
    await engine.flushNow();
    await waitUntil("the open of the first port", () => sink.sent.some((e) => e.port === a), 10_000, 5);
    source.emit(listenEvent(b, 2));
    assert.ok(engine.pipeline.tracker.open().some((p) => p.port === b), "decided");
    // Any snapshot write in the window (a report's, the outbox clearing's); then the watcher dies.
    await engine.pipeline.reporter.save();
    const crashed = await Deno.readTextFile(path);
    const snap = (await loadSnapshot(path, engine.pipeline.reporter.options.owner)).snapshot!;
    assert.deepEqual(
      snap.state.ports.map((p) => p.port),
      [a],
      "the gathering batch is not in the saved state",
    );

    // Restart from the file the crash left: the ledger (a scan would find both ports) says a and b are open.
    await Deno.writeTextFile(`${dir}/restart`, crashed);
    const sink2 = new CollectingSink();
    const tracker = new PortTracker();
    const r2 = new Reporter({
      ...engine.pipeline.reporter.options,
      sink: sink2,
      tracker,
      snapshotPath: `${dir}/restart`,
    });
    await r2.restore();
    const ns = netnsInode();
    const seen = engine.ledger.observations(ns);
    await r2.report(tracker.observe(ns, seen, Date.now()), engine.pipeline.identity, "ebpf");
    const all = new Map([...sink.sent, ...sink2.sent].map((e) => [e.id, e]));
    assert.deepEqual(
      [...all.values()].filter((e) => e.event === "open").map((e) => e.port).sort(),
      [a, b],
      "each open delivered exactly once across the crash",
    );
    await r2.settle();
  });
});

Deno.test("EventEngine: ends read before their older opens (another CPU's buffer) are reported after them", async () => {
  const sink = new CollectingSink();
  const source = new FakeSource(1, 60);
  await withEngine(source, sink, async (engine) => {
    const [a, b, c] = TEST_PORTS;
    const ns = netnsInode();
    // As bpftrace reads them when CPU 1's buffer comes first: every end, then the older opens.
    source.emit(
      {
        ts: Date.now(),
        kts: 200,
        kind: "unlisten",
        pid: 4242,
        proto: "tcp",
        sk: `0xffff${a}`,
        port: a,
        netns: ns,
      },
      { ts: Date.now(), kts: 210, kind: "close", pid: 4242, fd: 5, sk: `0xffff${b}`, inode: 900000 + b },
      { ts: Date.now(), kts: 220, kind: "exit", pid: 77 },
      listenEvent(a, 100),
      listenEvent(b, 110, { kind: "bind", proto: "udp", fd: 5 }),
      listenEvent(c, 120, { kind: "bind", proto: "udp", pid: 77 }),
    );
    await openThenClose(sink, [a, b, c]);
    assert.deepEqual(engine.ledger.sockets(), [], "no phantom");
  });
});

Deno.test("EventEngine: with gatherMs 0, what one read brings is reported together, at once", async () => {
  const batches: number[][] = [];
  const sink = new CollectingSink();
  const send = sink.send.bind(sink);
  sink.send = (events) => {
    batches.push(events.map((e) => e.port));
    return send(events);
  };
  const source = new FakeSource(0);
  await withEngine(source, sink, async () => {
    const [a, b, c] = TEST_PORTS;
    // One read: three opens applied in one synchronous run.
    source.emit(listenEvent(a, 1), listenEvent(b, 2), listenEvent(c, 3, { kind: "bind", proto: "udp" }));
    assert.equal(batches.length, 0, "nothing reported while the read is being applied");
    // Reported once the run is over (a microtask, no gather timer), as one batch.
    await waitUntil("the first report", () => batches.length >= 1, 10_000, 5);
    assert.deepEqual(batches, [[a, b, c]], "one report with the whole read");
    // The next read is the next report.
    source.emit(listenEvent(a, 4, { kind: "unlisten", sk: `0xffff${a}` }));
    await waitUntil("the second report", () => batches.length === 2, 10_000, 5);
    assert.deepEqual(sink.sent.filter((e) => e.event === "close").map((e) => e.port), [a]);
  });
});

/** Wait until each of `ports` has an open and a close, and check that these are all, in that order. */
async function openThenClose(sink: CollectingSink, ports: number[]): Promise<void> {
  await waitUntil("an open and a close of each port", () => sink.sent.length >= 2 * ports.length, 10_000, 5);
  for (const p of ports) {
    assert.deepEqual(
      sink.sent.filter((e) => e.port === p).map((e) => e.event),
      ["open", "close"],
      `port ${p}`,
    );
  }
}

/** An unlisten of `port` (kernel time `kts`), as the bpftrace source reports it. */
function unlistenEvent(port: number, kts: number): SocketEvent {
  return {
    ts: Date.now(),
    kts,
    kind: "unlisten",
    pid: 4242,
    proto: "tcp",
    sk: `0xffff${port}`,
    port,
    netns: netnsInode(),
  };
}

Deno.test("EventEngine: a read that takes longer than the reorder window to apply: its ends wait for its opens", async () => {
  const sink = new CollectingSink();
  const source = new FakeSource(1, 60);
  await withEngine(source, sink, async () => {
    const [a, b] = TEST_PORTS;
    // One read (one synchronous run): the ends, then 80 ms of work, then their older opens.
    source.emit(unlistenEvent(a, 200), unlistenEvent(b, 210));
    for (const t = Date.now(); Date.now() - t < 80;) { /* the engine busy with the rest of the read */ }
    source.emit(listenEvent(a, 100), listenEvent(b, 110));
    await openThenClose(sink, [a, b]);
  });
});

Deno.test("EventEngine: while the source is behind, held ends wait for opens read after the window", async () => {
  const sink = new CollectingSink();
  const source = new FakeSource(1, 60);
  await withEngine(source, sink, async (engine) => {
    const [a, b] = TEST_PORTS;
    // A backlog drained one CPU's buffer after the other: the ends, then (100 ms later) the older opens.
    source.emit(unlistenEvent(a, 200), unlistenEvent(b, 210));
    source.behind();
    await elapse(50, "a backlog being drained: past the 60 ms window in two steps");
    source.behind(); // still draining
    await elapse(50, "the rest of the backlog");
    source.emit(listenEvent(a, 100), listenEvent(b, 110));
    source.behind();
    await openThenClose(sink, [a, b]);
    assert.equal(engine.ledger.lateOpens, 0, "no open taken for late");
  });
});
