import assert from "node:assert/strict";
import { machineShare, machineTicks, parseProcStat } from "./machine_cpu.ts";

Deno.test("parseProcStat: the aggregate line, steal apart from busy and idle", () => {
  const text = "cpu  100 5 50 800 20 3 2 20 0 0\ncpu0 50 2 25 400 10 1 1 10 0 0\nintr 1\n";
  assert.deepEqual(parseProcStat(text), { busy: 160, idle: 820, steal: 20 });
  assert.throws(() => parseProcStat("intr 1\n"), /no aggregate 'cpu ' line/);
});

Deno.test("machineShare: busy and steal as % of all the time between two readings", () => {
  const share = machineShare({ busy: 100, idle: 100, steal: 0 }, { busy: 160, idle: 130, steal: 10 });
  assert.deepEqual(share, { busyPct: 60, stealPct: 10 });
  assert.deepEqual(machineShare({ busy: 1, idle: 1, steal: 1 }, { busy: 1, idle: 1, steal: 1 }), {
    busyPct: 0,
    stealPct: 0,
  });
});

Deno.test("machineTicks: this machine's /proc/stat reads and only grows", () => {
  const a = machineTicks();
  const b = machineTicks();
  assert.ok(b.busy >= a.busy && b.idle >= a.idle && b.steal >= a.steal);
  assert.ok(a.busy + a.idle > 0);
});
