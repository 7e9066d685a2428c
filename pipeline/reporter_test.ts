import assert from "node:assert/strict";
import { Reporter } from "./reporter.ts";
import { PortTracker } from "./tracker.ts";
import { PidResolver } from "./pid_resolver.ts";
import { Enricher } from "./enrich.ts";

const resolver = new PidResolver();
import { loadSnapshot, saveSnapshot } from "./snapshot.ts";
import { CollectingSink } from "../testing/sink.ts";
import type { EventSink } from "../delivery/sink.ts";
import type { PortEvent } from "../events/schema.ts";
import { elapse } from "../infra/wait.ts";

const identity = { host: "h", container_id: null, container_name: null, runtime: null };
const obs = {
  proto: "tcp" as const,
  port: 80,
  family: 4 as const,
  addrs: ["0.0.0.0"],
  inodes: [1],
  pids: [],
};

/** A reporter of `tracker`'s changes to `sink`, its snapshot at `path` (owner `owner`). */
function testReporter(tracker: PortTracker, path: string, owner: string, sink: EventSink): Reporter {
  return new Reporter({
    sink,
    tracker,
    enricher: new Enricher({ identityOf: () => identity, processInfo: (pid) => resolver.processInfo(pid) }),
    snapshotPath: path,
    owner,
    verbose: false,
    withWhere: false,
  });
}

Deno.test("Reporter: events decided before a crash (the snapshot's outbox) are sent at restart, same ids", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/snap`;
    const owner = "h/-/netns:1";
    // A watcher decided "open 80", wrote the snapshot with the event in its outbox, and died before delivery.
    const t1 = new PortTracker();
    const r1 = testReporter(t1, path, owner, new CollectingSink());
    const changes = t1.observe(1, [obs], Date.now());
    const [event] = await r1.report(changes, identity, "polling");
    await saveSnapshot(path, { owner, savedAt: "x", state: t1.state(), outbox: [event] });

    const sink = new CollectingSink();
    const t2 = new PortTracker();
    const r2 = testReporter(t2, path, owner, sink);
    await r2.restore();
    assert.deepEqual(sink.sent.map((e) => e.id), [event.id], "the undelivered event, with its id");
    assert.equal((await loadSnapshot(path, owner)).snapshot?.outbox, undefined, "the outbox is cleared");
    // And the port it opened is not reported again.
    assert.deepEqual(t2.observe(1, [obs], Date.now()), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Reporter, wait: false: every batch on the wire stays in the outbox until the sink has it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/snap`;
    const owner = "h/-/netns:1";
    const pending: (() => void)[] = [];
    const sent: PortEvent[][] = [];
    const sink: EventSink = {
      send(events) {
        sent.push(events);
        return new Promise<void>((resolve) => pending.push(resolve));
      },
      flush: () => Promise.resolve(true),
      close: () => Promise.resolve(),
    };
    const tracker = new PortTracker();
    const r = testReporter(tracker, path, owner, sink);
    const outboxIds = async () =>
      ((await loadSnapshot(path, owner)).snapshot?.outbox as PortEvent[] | undefined)?.map((e) => e.id);
    const a = await r.report(tracker.observe(1, [obs], Date.now()), identity, "ebpf", { wait: false });
    const b = await r.report(tracker.observe(1, [], Date.now()), identity, "ebpf", { wait: false });
    assert.deepEqual(
      sent.map((s) => s.map((e) => e.event)),
      [["open"], ["close"]],
      "both handed over, in order",
    );
    assert.deepEqual(await outboxIds(), [a[0].id, b[0].id], "both in the outbox while on the wire");
    let settled = false;
    const settling = r.settle().then(() => (settled = true));
    pending.shift()!();
    await elapse(10, "a window in which settle() must not resolve while a batch is on the wire");
    assert.equal(settled, false, "settle waits for every batch");
    pending.shift()!();
    await settling;
    assert.equal(await outboxIds(), undefined, "the outbox is cleared once the sink has them all");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Reporter: a change decided but not yet reported is not in the snapshot: a crash then loses no event", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/snap`;
    const owner = "h/-/netns:1";
    const reporter = (tracker: PortTracker, sink: EventSink) => testReporter(tracker, path, owner, sink);
    const obs81 = { ...obs, port: 81, inodes: [2] };
    const sink1 = new CollectingSink();
    const t1 = new PortTracker();
    const r1 = reporter(t1, sink1);
    await r1.report(t1.observePort(1, obs, obs, Date.now()), identity, "ebpf");
    // An event engine decides "open 81" (the tracker has it) and gathers it for its next batch; meanwhile the
    // snapshot is written (another report, the outbox clearing), and the watcher dies before the batch leaves.
    assert.equal(t1.observePort(1, obs81, obs81, Date.now()).length, 1);
    await r1.save();
    const crashed = await Deno.readTextFile(path);
    assert.deepEqual(
      (await loadSnapshot(path, owner)).snapshot?.state.ports.map((p) => p.port),
      [80],
      "the snapshot holds only what was reported",
    );

    // The restart, from the file as the crash left it.
    await Deno.writeTextFile(path, crashed);
    const sink2 = new CollectingSink();
    const t2 = new PortTracker();
    const r2 = reporter(t2, sink2);
    await r2.restore();
    await r2.report(t2.observe(1, [obs, obs81], Date.now()), identity, "ebpf");
    const delivered = new Map([...sink1.sent, ...sink2.sent].map((e) => [e.id, e]));
    assert.deepEqual(
      [...delivered.values()].map((e) => `${e.event} ${e.port}`).sort(),
      ["open 80", "open 81"],
      "each open delivered once (a resent event keeps its id)",
    );
    // And a close decided but not reported leaves the port open in the snapshot: the restart sends the close.
    assert.equal(t2.observePort(1, obs81, undefined, Date.now()).length, 1);
    await r2.save();
    assert.deepEqual((await loadSnapshot(path, owner)).snapshot?.state.ports.map((p) => p.port).sort(), [
      80,
      81,
    ]);
    await r2.settle();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Reporter: ports of a container (per-socket containers) are restored under their own key", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/snap`;
    const owner = "h/-/netns:1";
    const withC = { ...obs, container: { id: "c1", name: "web" } };
    const make = (tracker: PortTracker) => testReporter(tracker, path, owner, new CollectingSink());
    const t1 = new PortTracker();
    await make(t1).report(
      t1.observePort(1, { ...withC, containerId: "c1" }, withC, Date.now()),
      identity,
      "ebpf",
    );
    const t2 = new PortTracker();
    await make(t2).restore();
    assert.deepEqual(
      t2.observePort(1, { ...withC, containerId: "c1" }, withC, Date.now()),
      [],
      "no second open",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Reporter: the snapshot's state follows every change, also a port refreshed in place", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/snap`;
    const owner = "h/-/netns:1";
    const tracker = new PortTracker();
    const r = testReporter(tracker, path, owner, new CollectingSink());
    const saved = async () => (await loadSnapshot(path, owner)).snapshot?.state;
    const expected = () => JSON.parse(JSON.stringify(r.reportedState()));
    const ports = [80, 81, 82].map((port) => ({ ...obs, port, pids: [10 + port] }));
    await r.report(tracker.observe(1, ports, 1000), identity, "polling");
    assert.deepEqual(await saved(), expected());
    assert.deepEqual((await saved())?.ports.map((p) => p.port), [80, 81, 82]);

    // 81 is refreshed in place (a new holder: a change, reported with the next open): the write has its new
    // fields.
    const change = tracker.observePort(1, { proto: "tcp", port: 81 }, { ...ports[1], pids: [99] }, 2000);
    assert.deepEqual(change.map((c) => c.kind), ["change"]);
    const events = await r.report(
      [
        ...change,
        ...tracker.observePort(1, { proto: "tcp", port: 83 }, { ...obs, port: 83, pids: [7] }, 3000),
      ],
      identity,
      "polling",
    );
    assert.deepEqual(events.map((e) => [e.event, e.port, e.pids, e.last_pids]), [
      ["change", 81, [99], [91]],
      ["open", 83, [7], undefined],
    ]);
    const state = await saved();
    assert.deepEqual(state, expected());
    const p81 = state?.ports.find((p) => p.port === 81);
    assert.deepEqual([p81?.pids, p81?.lastPids, p81?.seen], [[99], [99], 2000]);

    // A close drops it.
    await r.report(tracker.observePort(1, { proto: "tcp", port: 80 }, undefined, 4000), identity, "polling");
    assert.deepEqual((await saved())?.ports.map((p) => p.port), [81, 82, 83]);
    assert.deepEqual(await saved(), expected());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Reporter: a change decided before its open is reported leaves both right in the snapshot", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/snap`;
    const owner = "h/-/netns:1";
    const tracker = new PortTracker();
    const r = testReporter(tracker, path, owner, new CollectingSink());
    // An event engine's batch: the open, then (a fork, the parent's close) a change, both decided before the report.
    const open = tracker.observePort(1, { proto: "tcp", port: 90 }, { ...obs, port: 90, pids: [10] }, 1000);
    const change = tracker.observePort(1, { proto: "tcp", port: 90 }, { ...obs, port: 90, pids: [11] }, 1001);
    const events = await r.report([...open, ...change], identity, "ebpf");
    assert.deepEqual(events.map((e) => [e.event, e.pids, e.last_pids]), [["open", [10], undefined], [
      "change",
      [11],
      [10],
    ]]);
    const state = (await loadSnapshot(path, owner)).snapshot?.state;
    assert.deepEqual(state?.ports.map((p) => [p.port, p.pids]), [[90, [11]]]);
    // restored, the same holders are no change
    const t2 = new PortTracker();
    await testReporter(t2, path, owner, new CollectingSink()).restore();
    assert.deepEqual(
      t2.observePort(1, { proto: "tcp", port: 90 }, { ...obs, port: 90, pids: [11] }, 2000),
      [],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
