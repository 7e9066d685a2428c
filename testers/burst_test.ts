import assert from "node:assert/strict";
import { NetNs, skipIf } from "../testing/netns.ts";
import { waitUntil } from "../infra/wait.ts";
import { type Line, nsSkipReason, onPort, runTester, scan, Tester } from "./harness_test.ts";

const noNs = nsSkipReason();

const byEvent = (lines: Line[], event: string) => lines.filter((l) => l.event === event);

for (const proto of ["tcp", "udp"] as const) {
  Deno.test({
    name:
      `burst.ts ${proto} 5 in a namespace: opens exactly ports 7000-7004, each once, all seen and all closed`,
    ignore: skipIf(noNs, `burst.ts ${proto} in a namespace`),
    async fn() {
      const ns = await NetNs.create();
      const t = Tester.start("burst", [
        proto,
        "5",
        "--base",
        "7000",
        "--hold-ms",
        "300",
        "--interval",
        "0.05",
      ], ns);
      try {
        // watch the namespace as a watcher would: every port must be seen open at some point
        const seen = new Map<number, Set<number>>(); // port -> inodes
        await waitUntil(
          "the burst to end",
          () => {
            for (const s of scan(ns)) {
              if (s.proto !== proto) continue;
              if (!seen.has(s.port)) seen.set(s.port, new Set());
              seen.get(s.port)!.add(s.inode);
            }
            return t.exited !== undefined;
          },
          20_000,
          5,
        );
        const end = await t.finish();
        assert.equal(end.code, 0, end.stderr);
        const ports = [7000, 7001, 7002, 7003, 7004];
        const opens = byEvent(end.lines, "open");
        const closes = byEvent(end.lines, "close");
        assert.deepEqual(opens.map((l) => l.port), ports);
        assert.deepEqual(closes.map((l) => l.port).sort(), ports);
        for (const l of [...opens, ...closes]) assert.equal(l.proto, proto);
        for (const c of closes) assert.ok(c.held_ms >= 295, JSON.stringify(c));
        // started about 50 ms apart, never all at once
        assert.ok(opens[4].at_ms - opens[0].at_ms >= 190, JSON.stringify(opens));
        const summary = end.lines.at(-1)!;
        assert.deepEqual(
          { ...summary, elapsed_ms: 0, pid: 0 },
          {
            summary: true,
            proto,
            host: "0.0.0.0",
            pid: 0,
            count: 5,
            base: 7000,
            opened: 5,
            closed: 5,
            failed: [],
            elapsed_ms: 0,
          },
        );
        assert.equal(end.lines.length, 11);
        // each port was seen, as one socket (opened once), and none is left
        assert.deepEqual([...seen.keys()].sort(), ports);
        for (const [port, inodes] of seen) assert.equal(inodes.size, 1, `port ${port}: ${[...inodes]}`);
        assert.deepEqual(scan(ns).filter((s) => s.port >= 7000 && s.port <= 7004), []);
      } finally {
        await t.close();
        await ns.delete();
      }
    },
  });
}

Deno.test({
  name: "burst.ts: a port in use is reported (holder named) and skipped, the others open; exit 1",
  ignore: skipIf(noNs, "burst.ts with a port in use"),
  async fn() {
    const ns = await NetNs.create();
    const holder = Tester.start("hold", ["tcp", "7002"], ns);
    try {
      const { pid } = await holder.ready();
      const end = await runTester("burst", [
        "tcp",
        "4",
        "--base",
        "7000",
        "--hold-ms",
        "50",
        "--interval",
        "0",
      ], ns);
      assert.equal(end.code, 1);
      const message = `port 7002/tcp is already in use on 0.0.0.0 (held by pid ${pid} comm deno)`;
      assert.equal(end.stderr.trim(), `burst: ${message}`);
      assert.deepEqual(byEvent(end.lines, "open").map((l) => l.port).sort(), [7000, 7001, 7003]);
      const summary = end.lines.at(-1)!;
      assert.equal(summary.opened, 3);
      assert.equal(summary.closed, 3);
      assert.deepEqual(summary.failed, [{ port: 7002, error: message }]);
      assert.equal(onPort(7002, "tcp", ns).length, 1); // the holder's, untouched
    } finally {
      await holder.close();
      await ns.delete();
    }
  },
});

Deno.test("burst.ts: SIGTERM closes every open port at once and prints the summary", async () => {
  // base from a port the kernel just handed out, so the range is very likely free
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const base = Math.min(probe.addr.port, 65000);
  probe.close();
  const t = Tester.start("burst", [
    "tcp",
    "3",
    "--base",
    String(base),
    "--hold-ms",
    "60000",
    "--interval",
    "0",
    "--host",
    "127.0.0.1",
  ]);
  try {
    await t.line((l) => byEvent(t.lines, "open").length === 3 || l.summary === true, "three ports open");
    t.kill("SIGTERM");
    const end = await t.finish();
    assert.equal(end.code, 1);
    assert.equal(byEvent(end.lines, "close").length, 3);
    const summary = end.lines.at(-1)!;
    assert.equal(summary.interrupted, "SIGTERM");
    assert.equal(summary.opened, 3);
    assert.equal(summary.closed, 3);
    for (let p = base; p < base + 3; p++) assert.deepEqual(onPort(p, "tcp"), []);
  } finally {
    await t.close();
  }
});

Deno.test("burst.ts: bad arguments exit 2", async () => {
  const cases: [string[], string][] = [
    [["tcp", "0"], "burst: COUNT=0: expected a whole number 1-10000"],
    [["tcp", "3", "--base", "65535"], "burst: --base=65535: expected a first port such that 3 ports fit"],
    [["tcp", "3", "--base", "abc"], "burst: --base=abc: expected a port 1-65535"],
    [["tcp", "3", "--interval=-1"], "burst: --interval=-1: expected a number of seconds >= 0"],
    [["tcp", "3", "--hold-ms", "x"], "burst: --hold-ms=x: expected a whole number of milliseconds"],
    [["quic", "3"], "burst: PROTO=quic: expected tcp or udp"],
  ];
  for (const [args, message] of cases) {
    const end = await runTester("burst", args);
    assert.equal(end.code, 2, `${args.join(" ")}: ${end.stderr}`);
    assert.ok(end.stderr.startsWith(message), `${args.join(" ")}: ${end.stderr}`);
  }
});
