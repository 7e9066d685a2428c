import assert from "node:assert/strict";
import { PortEventSchema } from "../events/schema.ts";
import { portKey, PortsState } from "../listener/ports_state.ts";
import { HostSim, Rng, truthKey } from "./traffic.ts";

Deno.test("HostSim: valid events whose replay gives the simulated truth; tcp, udp, v4, v6, hosts and containers", () => {
  const sims = Array.from({ length: 20 }, (_, i) => new HostSim({ host: `h${i}`, seed: i + 1 }));
  const state = new PortsState();
  const seen = { tcp: 0, udp: 0, v4: 0, v6: 0, host: 0, container: 0, open: 0, close: 0 };
  let now = Date.parse("2026-11-25T10:00:00Z");
  for (let round = 0; round < 50; round++) {
    for (const sim of sims) {
      for (const e of sim.step(7, now, 1000)) {
        PortEventSchema.parse(e);
        state.apply({ ...e, ts: new Date(now).toISOString() });
        seen[e.proto]++;
        seen[e.family === 4 ? "v4" : "v6"]++;
        seen[e.container_id ? "container" : "host"]++;
        if (e.event !== "change") seen[e.event]++;
      }
    }
    now += 1000;
  }
  for (const [k, n] of Object.entries(seen)) assert(n > 100, `${k}: only ${n} events`);
  const truth = new Set(sims.flatMap((s) => [...s.open.keys()]));
  const listed = new Set(
    state.list().map((p) => truthKey(p.host!, p.container_id, p.netns, p.proto!, p.port)),
  );
  assert.deepEqual(listed, truth);
  // Each host keeps about its target open (16), not an ever-growing set.
  assert(truth.size > 20 * 8 && truth.size < 20 * 32, `${truth.size} open`);
  // Keys agree with the listener's.
  const one = sims[0].open.values().next().value!;
  assert.deepEqual(portKey(one.event).split("\u0000").length, 5);
});

Deno.test("HostSim: the same seed gives the same traffic; observed_at spread over the cycle, in order", () => {
  const a = new HostSim({ host: "x", seed: 42 }).step(30, 1_000_000, 1000);
  const b = new HostSim({ host: "x", seed: 42 }).step(30, 1_000_000, 1000);
  assert.deepEqual(
    a.map((e) => [e.event, e.port, e.proto, e.container_id]),
    b.map((e) => [e.event, e.port, e.proto, e.container_id]),
  );
  const times = a.map((e) => Date.parse(e.observed_at));
  for (let i = 1; i < times.length; i++) assert(times[i] > times[i - 1]);
  assert(times[0] > 1_000_000 - 1000 && times.at(-1)! <= 1_000_000);
});

Deno.test("Rng: uniform enough in [0, 1)", () => {
  const r = new Rng(7);
  let sum = 0;
  for (let i = 0; i < 10_000; i++) {
    const x = r.next();
    assert(x >= 0 && x < 1);
    sum += x;
  }
  assert(Math.abs(sum / 10_000 - 0.5) < 0.02);
});
