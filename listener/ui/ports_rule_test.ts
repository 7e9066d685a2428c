import assert from "node:assert/strict";
import { isPortEvent, type OpenPort, portKey, PortTable } from "./ports_rule.js";

const at = (s: number) => new Date(Date.parse("2026-11-25T08:00:00Z") + s * 1000).toISOString();
let n = 0;
const ev = (over: Record<string, unknown>) => ({
  ts: at(100 + n),
  id: `id-${++n}`,
  event: "open",
  port: 5000,
  proto: "tcp",
  family: 4,
  addrs: ["0.0.0.0"],
  pids: [100],
  host: "node-1",
  container_id: "3f4e1c2b9a7d",
  container_name: "web",
  netns: 4026532300,
  source: "polling",
  ...over,
});
const rows = (t: PortTable) => [...t.values()].map((p) => [p.port, p.pids, p.addrs, p.since]);

Deno.test("ports rule: a change refreshes holders and addresses, keeps since; a close after it closes", () => {
  const t = new PortTable();
  const open = t.apply(ev({ observed_at: at(1) }));
  assert.equal(open?.since, at(1));
  const change = ev({
    event: "change",
    observed_at: at(2),
    pids: [101],
    last_pids: [100],
    addrs: ["0.0.0.0", "::"],
    last_addrs: ["0.0.0.0"],
    process: { pid: 101, comm: "worker", cmdline: "worker", uid: 0 },
  });
  const after = t.apply(change);
  assert.equal(after, open, "refreshed in place");
  assert.deepEqual(rows(t), [[5000, [101], ["0.0.0.0", "::"], at(1)]]);
  assert.deepEqual([after?.event_id, after?.ts, (after?.process as { pid: number }).pid], [
    change.id,
    change.ts,
    101,
  ]);
  assert.equal(t.apply(ev({ event: "close", observed_at: at(3), pids: [], last_pids: [101] })), undefined);
  assert.equal(t.size, 0);
});

Deno.test("ports rule: a change about a port not known open opens it, since the change", () => {
  const t = new PortTable();
  t.apply(ev({ event: "change", observed_at: at(5), pids: [7], last_pids: [6] }));
  assert.deepEqual(rows(t), [[5000, [7], ["0.0.0.0"], at(5)]]);
  // Without observed_at (a seed watcher), the listener's time.
  const seed = ev({ event: "change", port: 5001, pids: [8] });
  t.apply(seed);
  assert.equal([...t.values()].find((p) => p.port === 5001)?.since, seed.ts);
});

Deno.test("ports rule: every close removes, shutdown ones too; a repeat changes nothing", () => {
  const t = new PortTable();
  for (const source of ["polling", "shutdown", "shutdown-ebpf", "shutdown-fallback"]) {
    t.apply(ev({ observed_at: at(1) }));
    const change = ev({ event: "change", observed_at: at(2), pids: [2] });
    t.apply(change);
    t.apply(change);
    assert.deepEqual(rows(t), [[5000, [2], ["0.0.0.0"], at(1)]]);
    const close = ev({ event: "close", source, pids: [], last_pids: [2] });
    t.apply(close);
    t.apply(close);
    assert.equal(t.size, 0, source);
  }
});

Deno.test("ports rule: one entry per host, container, netns, proto and port", () => {
  const t = new PortTable();
  const variants = [{}, { host: "node-2" }, { container_id: null }, { netns: 1 }, { proto: "udp" }, {
    port: 5001,
  }];
  for (const v of variants) t.apply(ev(v));
  assert.equal(t.size, variants.length);
  t.apply(ev({ event: "change", proto: "udp", pids: [9] }));
  assert.deepEqual([...t.values()].filter((p) => p.pids[0] === 9).map((p) => p.proto), ["udp"]);
  t.apply(ev({ event: "close", host: "node-2" }));
  assert.equal(t.size, variants.length - 1);
  assert.equal(new Set([...t.values()].map(portKey)).size, variants.length - 1);
});

Deno.test("ports rule: what is not a port event leaves the table alone", () => {
  const t = new PortTable();
  t.apply(ev({}));
  const before = JSON.stringify([...t.values()]);
  const others = [
    { ts: at(1), id: "m", message: "port 5000 is up" },
    ev({ event: "moved" }),
    ev({ event: "close", port: "5000" }),
    ev({ event: "change", port: undefined }),
  ];
  for (const r of others) {
    assert.equal(isPortEvent(r), false, JSON.stringify(r));
    assert.equal(t.apply(r), undefined);
  }
  assert.equal(JSON.stringify([...t.values()]), before);
  assert.equal(t.size, 1);
  assert.equal(isPortEvent(null), false);
  assert.equal(isPortEvent(ev({ event: "change" })), true);
});

Deno.test("ports rule: load() takes GET /ports rows as they are; events then apply to them", () => {
  const t = new PortTable();
  t.apply(ev({ port: 1 }));
  const listed = { ...ev({}), since: at(1), event_id: "x" } as unknown as OpenPort;
  t.load([listed]);
  assert.deepEqual([...t.values()], [listed]);
  t.apply(ev({ event: "change", pids: [5] }));
  assert.deepEqual([listed.pids, listed.since], [[5], at(1)]);
  t.apply(ev({ event: "close" }));
  assert.equal(t.size, 0);
});
