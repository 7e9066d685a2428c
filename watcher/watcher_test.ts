import assert from "node:assert/strict";
import { type Holder, NetNs, netnsSkipReason, skipIf } from "../testing/netns.ts";
import { WatcherProc } from "./testing/watcher_proc.ts";
import { elapse } from "../infra/wait.ts";
import type { PortEvent } from "../events/schema.ts";

const skip = netnsSkipReason();

/** A temp dir and a fresh namespace for one test; both removed after. */
async function withNs(fn: (ns: NetNs, dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "portwatch-watcher-test-" });
  const ns = await NetNs.create();
  try {
    await fn(ns, dir);
  } finally {
    await ns.delete();
    await Deno.remove(dir, { recursive: true });
  }
}

const baseEnv = (dir: string, extra: Record<string, string> = {}) => ({
  SCAN_INTERVAL: "0.1",
  SNAPSHOT_PATH: `${dir}/snapshot`,
  SPOOL_PATH: `${dir}/spool`,
  HOST_NAME: "test-host",
  LOG_LEVEL: "info",
  ...extra,
});

const is = (kind: PortEvent["event"], port: number, proto?: string) => (e: PortEvent) =>
  e.event === kind && e.port === port && (proto === undefined || e.proto === proto);

Deno.test({
  name: "watcher: TCP and UDP, IPv4 and IPv6, open and close with the right pids, process and namespace",
  ignore: skipIf(skip, "watcher protocols"),
  async fn() {
    await withNs(async (ns, dir) => {
      const w = WatcherProc.start(baseEnv(dir), ns);
      let h: Holder | undefined;
      try {
        h = await ns.holder({
          sockets: [
            { proto: "tcp", host: "0.0.0.0", port: 7001 },
            { proto: "tcp", host: "::1", port: 7002 },
            { proto: "udp", host: "127.0.0.1", port: 7003 },
            { proto: "udp", host: "::", port: 7004 },
          ],
        });
        const opens = await w.waitFor(
          "4 opens",
          (e) => e.event === "open" && e.port >= 7001 && e.port <= 7004,
          4,
        );
        const byPort = new Map(opens.map((e) => [e.port, e]));
        assert.deepEqual(
          [7001, 7002, 7003, 7004].map((
            p,
          ) => [byPort.get(p)?.proto, byPort.get(p)?.family, byPort.get(p)?.addrs]),
          [["tcp", 4, ["0.0.0.0"]], ["tcp", 6, ["::1"]], ["udp", 4, ["127.0.0.1"]], ["udp", 6, ["::"]]],
        );
        const nsInode = Deno.statSync(ns.path).ino;
        for (const e of opens) {
          assert.deepEqual(e.pids, [h.pid]);
          assert.equal(e.process?.comm, "python3");
          assert.equal(e.source, "polling");
          assert.equal(e.host, "test-host");
          assert.equal(e.netns, nsInode);
          assert.equal(e.container_id, null);
          assert.match(e.id, /^[0-9a-f-]{36}$/);
        }
        await h.close();
        const closes = await w.waitFor(
          "4 closes",
          (e) => e.event === "close" && e.port >= 7001 && e.port <= 7004,
          4,
        );
        for (const e of closes) {
          assert.deepEqual(e.pids, []);
          assert.deepEqual(e.last_pids, [h.pid]);
        }
        await elapse(300, "a few more scans (0.1 s apart), in which nothing may be reported twice");
        assert.equal(w.matching((e) => e.port >= 7001 && e.port <= 7004).length, 8);
        assert.ok(
          w.stderr.some((l) => /New port opened: 7001 \(pids: \d+\)/.test(l)),
          "the seed's human line",
        );
        assert.ok(
          w.stderr.some((l) =>
            /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\] Port closed: 7001 \(last pids/.test(l)
          ),
        );
      } finally {
        await h?.close();
        await w.stop();
      }
    });
  },
});

Deno.test({
  name: "watcher: a forked child keeps the socket after its parent exits: no close, its pid",
  ignore: skipIf(skip, "watcher fork"),
  async fn() {
    await withNs(async (ns, dir) => {
      const w = WatcherProc.start(baseEnv(dir), ns);
      const h = await ns.holder({ sockets: [{ proto: "tcp", host: "0.0.0.0", port: 7010 }], fork: true });
      try {
        const [open] = await w.waitFor("open 7010", is("open", 7010));
        assert.deepEqual(open.pids, [h.pid, h.report.childPid!].sort((a, b) => a - b));
        await h.exitParent();
        // Several scans later the port is still open: no close.
        await elapse(500, "five scans, in which no close may be reported");
        assert.equal(w.matching(is("close", 7010)).length, 0, "no close while the child holds it");
        await h.close();
        const [close] = await w.waitFor("close 7010", is("close", 7010));
        assert.deepEqual(close.last_pids, [h.report.childPid]);
      } finally {
        await h.close();
        await w.stop();
      }
    });
  },
});

Deno.test({
  name: "watcher: CLOSE_GRACE_MS: a port back within the grace emits nothing; gone for longer, one close",
  ignore: skipIf(skip, "watcher grace"),
  async fn() {
    await withNs(async (ns, dir) => {
      const w = WatcherProc.start(baseEnv(dir, { CLOSE_GRACE_MS: "1500" }), ns);
      let h = await ns.holder({ sockets: [{ proto: "tcp", host: "0.0.0.0", port: 7020 }] });
      try {
        await w.waitFor("open 7020", is("open", 7020));
        const first = h.pid;
        await h.close();
        h = await ns.holder({ sockets: [{ proto: "tcp", host: "0.0.0.0", port: 7020 }] });
        // back within the grace, held by another process: no close and no second open, but a change of holders
        const [change] = await w.waitFor("change 7020", is("change", 7020));
        assert.deepEqual([change.pids, change.last_pids], [[h.pid], [first]]);
        await elapse(2000, "past the 1.5 s grace: still one open, no close");
        assert.deepEqual(w.matching((e) => e.port === 7020).map((e) => e.event), ["open", "change"]);
        await h.close();
        const started = Date.now();
        await w.waitFor("close 7020", is("close", 7020), 1, 5000);
        assert.ok(Date.now() - started >= 1000, "the close waited for the grace");
        assert.equal(w.matching((e) => e.port === 7020).length, 3);
      } finally {
        await h.close();
        await w.stop();
      }
    });
  },
});

Deno.test({
  name: "watcher: WATCH_PORTS reports only the listed ports; BURST_SCANS catch a port held 150 ms",
  ignore: skipIf(skip, "watcher filter and burst"),
  async fn() {
    await withNs(async (ns, dir) => {
      // The seed's burst: 60 scans 25 ms apart (1.5 s), then 10 s of nothing.
      const w = WatcherProc.start(
        baseEnv(dir, {
          WATCH_PORTS: "7030,7032-7033",
          SCAN_INTERVAL: "10",
          BURST_SCANS: "60",
          BURST_DELAY: "0.025",
          BURST_SPREAD: "0", // the seed's clustered burst
        }),
        ns,
      );
      let h: Holder | undefined;
      try {
        await w.waitLog(/watching this network namespace/);
        h = await ns.holder({
          sockets: [7030, 7031, 7032].map((port) => ({ proto: "tcp" as const, host: "0.0.0.0", port })),
        });
        await elapse(150, "the hold time of the burst's sockets: BURST_SCANS must catch them");
        await h.close();
        await w.waitFor(
          "open and close of 7030 and 7032",
          (e) => e.port === 7030 || e.port === 7032,
          4,
          3000,
        );
        assert.equal(w.matching((e) => e.port === 7031).length, 0, "7031 is not watched");
      } finally {
        await h?.close();
        await w.stop();
      }
    });
  },
});

Deno.test({
  name: "watcher: snapshot across a restart: opened and closed while down are reported, still-open is not",
  ignore: skipIf(skip, "watcher snapshot"),
  async fn() {
    await withNs(async (ns, dir) => {
      const a = await ns.holder({ sockets: [{ proto: "tcp", host: "0.0.0.0", port: 7040 }] });
      const b = await ns.holder({ sockets: [{ proto: "udp", host: "0.0.0.0", port: 7041 }] });
      let c: Holder | undefined;
      try {
        const w1 = WatcherProc.start(baseEnv(dir), ns);
        await w1.waitFor("opens", (e) => e.event === "open" && (e.port === 7040 || e.port === 7041), 2);
        await w1.stop("SIGKILL"); // a crash: no shutdown events, the snapshot stays
        await b.close();
        c = await ns.holder({ sockets: [{ proto: "tcp", host: "::", port: 7042 }] });
        const w2 = WatcherProc.start(baseEnv(dir), ns);
        try {
          await w2.waitFor("close 7041 and open 7042", (e) => is("close", 7041)(e) || is("open", 7042)(e), 2);
          await elapse(300, "a few scans of the new watcher, in which 7040 may not be reported again");
          assert.equal(w2.matching((e) => e.port === 7040).length, 0, "7040 was open before and still is");
        } finally {
          await w2.stop();
        }
      } finally {
        await a.close();
        await b.close();
        await c?.close();
      }
    });
  },
});

Deno.test({
  name: "watcher: bad settings stop start-up with the variable, the value and what is accepted",
  async fn() {
    for (
      const [env, re] of [
        [{ SCAN_INTERVAL: "abc" }, /SCAN_INTERVAL="abc" is not valid: expected a number of seconds/],
        [{ WATCH_PORTS: "70000" }, /WATCH_PORTS="70000".*1-65535/],
        [{ DESIRED_PORTS: "9-3" }, /DESIRED_PORTS="9-3".*backwards/],
      ] as const
    ) {
      const w = WatcherProc.start(env as Record<string, string>);
      const status = await w.exited();
      assert.equal(status.code, 2);
      assert.match(w.stderr.join("\n"), re);
    }
  },
});

Deno.test({
  name: "watcher: holders change while the port stays open: a fork, then the parent's close, each a change",
  ignore: skipIf(skip, "watcher holder change"),
  async fn() {
    await withNs(async (ns, dir) => {
      const w = WatcherProc.start(baseEnv(dir), ns);
      const h = await ns.holder({
        sockets: [{ proto: "tcp", host: "0.0.0.0", port: 7060 }, { proto: "udp", host: "::", port: 7061 }],
      });
      try {
        await w.waitFor(
          "opens 7060, 7061",
          (e) => e.event === "open" && (e.port === 7060 || e.port === 7061),
          2,
        );
        const child = await h.fork();
        const both = [h.pid, child].sort((a, b) => a - b);
        const added = await w.waitFor("the child added to both", (e) => e.event === "change", 2);
        for (const e of added) assert.deepEqual([e.pids, e.last_pids], [both, [h.pid]], `port ${e.port}`);
        await h.closeSockets();
        const removed = await w.waitFor("the parent gone from both", (e) => e.event === "change", 4);
        for (const e of removed.slice(2)) {
          assert.deepEqual([e.pids, e.last_pids], [[child], both], `port ${e.port}`);
        }
        assert.deepEqual(w.matching((e) => e.event === "close"), [], "the ports stayed open");
      } finally {
        await h.close();
        await w.stop();
      }
    });
  },
});
