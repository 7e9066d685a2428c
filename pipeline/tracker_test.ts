import assert from "node:assert/strict";
import { PortTracker } from "./tracker.ts";
import type { PortObservation } from "./observe.ts";
import { observePorts } from "./observe.ts";

const obs = (port: number, pids = [10], proto: "tcp" | "udp" = "tcp"): PortObservation => ({
  proto,
  port,
  family: 4,
  addrs: ["0.0.0.0"],
  inodes: [port * 10],
  pids,
});
const kinds = (cs: { kind: string; port: { port: number } }[]) => cs.map((c) => `${c.kind} ${c.port.port}`);

Deno.test("PortTracker: opens and closes per namespace, once each", () => {
  const t = new PortTracker();
  assert.deepEqual(kinds(t.observe(1, [obs(80), obs(53, [10], "udp")], 0)), ["open 80", "open 53"]);
  assert.deepEqual(kinds(t.observe(1, [obs(80), obs(53, [10], "udp")], 1)), []);
  assert.deepEqual(kinds(t.observe(2, [obs(80)], 1)), ["open 80"], "same port, other namespace");
  const closed = t.observe(1, [obs(53, [10], "udp")], 2);
  assert.deepEqual(kinds(closed), ["close 80"]);
  assert.deepEqual(closed[0].port.pids, []);
  assert.deepEqual(closed[0].port.lastPids, [10]);
  assert.equal(t.open().length, 2);
});

Deno.test("PortTracker: a port back within the grace emits nothing; after it, a close", () => {
  const t = new PortTracker(500);
  t.observe(1, [obs(80)], 0);
  assert.deepEqual(kinds(t.observe(1, [], 100)), []);
  assert.equal(t.nextDeadline(), 600);
  assert.deepEqual(kinds(t.observe(1, [obs(80)], 400)), [], "back within the grace");
  assert.equal(t.nextDeadline(), undefined);
  assert.deepEqual(kinds(t.observe(1, [], 1000)), []);
  assert.deepEqual(kinds(t.tick(1499)), []);
  assert.deepEqual(kinds(t.tick(1500)), ["close 80"]);
});

Deno.test("PortTracker: pids follow the holders, each change of holders is a change; none found keeps them", () => {
  const t = new PortTracker();
  t.observe(1, [obs(80, [10])], 0);
  const [change] = t.observe(1, [obs(80, [11, 12])], 1);
  assert.equal(change.kind, "change");
  assert.deepEqual(change.port.pids, [11, 12]);
  assert.deepEqual(change.kind === "change" && change.before, { pids: [10], addrs: ["0.0.0.0"] });
  assert.deepEqual(t.observe(1, [obs(80, [11, 12])], 2), [], "same holders: nothing");
  assert.deepEqual(t.observe(1, [obs(80, [])], 3), [], "no holder found: unknown, the last ones are kept");
  assert.deepEqual(t.open()[0].pids, [11, 12]);
  const [c] = t.observe(1, [], 4);
  assert.equal(c.kind, "close");
  assert.deepEqual(c.port.lastPids, [11, 12]);
});

Deno.test("PortTracker: a change of addresses is a change; the change keeps its own copy of the port", () => {
  const t = new PortTracker();
  t.observe(1, [obs(80, [10])], 0);
  const [change] = t.observe(1, [{ ...obs(80, [10]), addrs: ["0.0.0.0", "::"] }], 1);
  assert.equal(change.kind, "change");
  assert.deepEqual(change.port.addrs, ["0.0.0.0", "::"]);
  assert.deepEqual(change.kind === "change" && change.before, { pids: [10], addrs: ["0.0.0.0"] });
  t.observe(1, [obs(80, [20])], 2);
  assert.deepEqual(change.port.pids, [10], "a later refresh does not alter an earlier change");
});

Deno.test("PortTracker: back within the grace with other holders: a change, no close or open", () => {
  const t = new PortTracker(500);
  t.observe(1, [obs(80, [10])], 0);
  assert.deepEqual(t.observe(1, [], 100), []);
  assert.deepEqual(kinds(t.observe(1, [obs(80, [11])], 200)), ["change 80"]);
  assert.equal(t.nextDeadline(), undefined);
});

Deno.test("PortTracker: snapshot restore diffs against what was open before a restart", () => {
  const a = new PortTracker();
  a.observe(1, [obs(80), obs(443)], 0);
  const saved = JSON.parse(JSON.stringify(a.state()));
  const b = new PortTracker();
  b.restore(saved);
  // While down: 443 closed and 8080 opened; 80 is still open and gets no second open.
  assert.deepEqual(kinds(b.observe(1, [obs(80), obs(8080)], 10)), ["open 8080", "close 443"]);
});

Deno.test("PortTracker: a vanished namespace closes its ports; closeAll empties", () => {
  const t = new PortTracker(10_000);
  t.observe(1, [obs(80)], 0);
  t.observe(2, [obs(81)], 0);
  assert.deepEqual(kinds(t.dropNamespace(1)), ["close 80"]);
  assert.deepEqual(kinds(t.closeAll()), ["close 81"]);
  assert.equal(t.open().length, 0);
});

Deno.test("observePorts: 0.0.0.0 and :: on one port are one entry with both addresses and every pid", () => {
  const ports = observePorts([
    { proto: "tcp", family: 6, addr: "::", port: 80, inode: 2, uid: 0 },
    { proto: "tcp", family: 4, addr: "0.0.0.0", port: 80, inode: 1, uid: 0 },
    { proto: "tcp", family: 4, addr: "0.0.0.0", port: 80, inode: 3, uid: 0 }, // SO_REUSEPORT
    { proto: "udp", family: 4, addr: "127.0.0.1", port: 80, inode: 4, uid: 0 },
  ], (inode) => ({ 1: [100], 2: [100], 3: [200, 100], 4: [] } as Record<number, number[]>)[inode]);
  assert.deepEqual(ports.map((p) => [p.proto, p.port, p.family, p.addrs, p.pids, p.inodes]), [
    ["tcp", 80, 4, ["0.0.0.0", "::"], [100, 200], [1, 2, 3]],
    ["udp", 80, 4, ["127.0.0.1"], [], [4]],
  ]);
});

Deno.test("PortTracker.observePort: one port at a time (event engines), with and without a grace", () => {
  const t = new PortTracker();
  const ref = { proto: "tcp", port: 80 };
  assert.deepEqual(kinds(t.observePort(1, ref, obs(80), 0)), ["open 80"]);
  assert.deepEqual(
    kinds(t.observePort(1, ref, obs(80, [11]), 1)),
    ["change 80"],
    "still open, other holders",
  );
  assert.deepEqual(kinds(t.observePort(1, ref, obs(80, [11]), 1)), [], "same holders: nothing");
  const [close] = t.observePort(1, ref, undefined, 2);
  assert.equal(close.kind, "close");
  assert.deepEqual(close.port.lastPids, [11]);
  assert.deepEqual(t.observePort(1, ref, undefined, 3), [], "closed once");

  const g = new PortTracker(100);
  g.observePort(1, ref, obs(80), 0);
  assert.deepEqual(g.observePort(1, ref, undefined, 10), []);
  assert.deepEqual(kinds(g.observePort(1, ref, obs(80), 50)), [], "back within the grace");
  g.observePort(1, ref, undefined, 60);
  assert.deepEqual(kinds(g.tick(159)), []);
  assert.deepEqual(kinds(g.tick(160)), ["close 80"]);
});

Deno.test("PortTracker: an open keeps its holders when a change follows before it is reported", () => {
  for (const via of ["observePort", "observe"] as const) {
    const t = new PortTracker();
    const opened = via === "observePort"
      ? t.observePort(1, obs(80), obs(80, [10]), 0)
      : t.observe(1, [obs(80)], 0);
    // a fork whose parent then closed its copy, decided in the same batch (event engines) or the next scan
    const changed = t.observePort(1, obs(80), obs(80, [11]), 1);
    assert.deepEqual(opened.map((c) => [c.kind, c.port.pids]), [["open", [10]]], via);
    assert.deepEqual(
      changed.map((c) => [c.kind, c.port.pids, c.port.lastPids]),
      [["change", [11], [11]]],
      via,
    );
  }
});
