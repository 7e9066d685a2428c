import assert from "node:assert/strict";
import { compareTables, formatMismatches, formatTable, tableFromPorts, tableFromSs } from "./port_table.ts";
import { parseSs } from "./ss_parse.ts";

const SS = `tcp LISTEN 0 128 0.0.0.0:1010 0.0.0.0:* users:(("python3",pid=30,fd=17))
tcp LISTEN 0 128 0.0.0.0:1010 0.0.0.0:* users:(("python3",pid=20,fd=16),("python3",pid=30,fd=16))
tcp LISTEN 0 128 [::]:1010 [::]:* users:(("python3",pid=20,fd=5))
udp UNCONN 0 0 *:1010 *:* users:(("python3",pid=40,fd=5))
`;

Deno.test("port table: ss sockets grouped per (proto, port), pids and addresses merged and sorted", () => {
  const t = tableFromSs(parseSs(SS));
  assert.deepEqual([...t.values()], [
    { proto: "tcp", port: 1010, pids: [20, 30], addrs: ["0.0.0.0", "::"] },
    { proto: "udp", port: 1010, pids: [40], addrs: ["::"] },
  ]);
  assert.equal(
    formatTable(t),
    "  tcp/1010 pids [20,30] addrs [0.0.0.0, ::]\n  udp/1010 pids [40] addrs [::]",
  );
  assert.equal(formatTable(new Map()), "  (empty)");
});

Deno.test("port table: the listener's /ports, duplicates merged and named", () => {
  const { table, dupes } = tableFromPorts({
    count: 3,
    ports: [
      { proto: "tcp", port: 1010, addrs: ["::", "0.0.0.0"], pids: [30, 20] },
      { proto: "udp", port: 1010, addrs: ["::"], pids: [40] },
      { proto: "udp", port: 1010, addrs: ["::1"], pids: [41] },
    ],
  });
  assert.deepEqual(dupes, ["udp/1010"]);
  assert.deepEqual(table.get("udp/1010"), { proto: "udp", port: 1010, pids: [40, 41], addrs: ["::", "::1"] });
  assert.deepEqual(compareTables(tableFromSs(parseSs(SS)), table).map((m) => `${m.key} ${m.kind}`), [
    "udp/1010 pids",
    "udp/1010 addrs",
  ]);
});

Deno.test("port table: missing, extra, stale pids and addresses, each reported", () => {
  const want = tableFromSs(parseSs(SS));
  const { table: got } = tableFromPorts({
    count: 2,
    ports: [
      { proto: "tcp", port: 1010, addrs: ["0.0.0.0"], pids: [20] },
      { proto: "tcp", port: 2000, addrs: ["::1"], pids: [9] },
    ],
  });
  const diff = compareTables(want, got);
  assert.deepEqual(diff.map((m) => `${m.key} ${m.kind}`), [
    "tcp/1010 pids",
    "tcp/1010 addrs",
    "tcp/2000 extra",
    "udp/1010 missing",
  ]);
  assert.equal(
    formatMismatches(diff),
    [
      "tcp/1010 pids: ss [20,30] listener [20]",
      "tcp/1010 addrs: ss [0.0.0.0, ::] listener [0.0.0.0]",
      "tcp/2000 in the listener but not in ss (listener: pids [9] addrs [::1])",
      "udp/1010 missing from the listener (ss: pids [40] addrs [::])",
    ].join("\n"),
  );
  assert.deepEqual(compareTables(want, want), []);
});
