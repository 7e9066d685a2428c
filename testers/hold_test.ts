import assert from "node:assert/strict";
import dgram from "node:dgram";
import { PidResolver } from "../pipeline/pid_resolver.ts";
import { NetNs, skipIf, withDeadline } from "../testing/netns.ts";
import { denoForUser } from "../testing/user_deno.ts";
import { nsSkipReason, onPort, runTester, scan, Tester, testerCmd } from "./harness_test.ts";

const noNs = nsSkipReason();

/** The pids holding `inode`, from /proc. */
const holdersOf = (inode: number) =>
  new PidResolver({ walker: "pure" }).walk(new Set([inode])).get(inode) ?? [];

Deno.test("hold.ts tcp 0: the ready line names the real port and its pid, which holds a listener; SIGTERM closes it", async () => {
  const t = Tester.start("hold", ["tcp", "0", "--host", "127.0.0.1"]);
  try {
    const ready = await t.ready();
    assert.equal(ready.proto, "tcp");
    assert.equal(ready.host, "127.0.0.1");
    assert.equal(ready.pid, t.child.pid);
    assert.ok(ready.port > 0 && ready.port <= 65535);
    assert.deepEqual(Object.keys(ready), ["ready", "proto", "port", "host", "pid"]);
    const [s] = onPort(ready.port, "tcp");
    assert.equal(s.addr, "127.0.0.1");
    assert.deepEqual(holdersOf(s.inode), [t.child.pid]);
    const conn = await withDeadline(
      Deno.connect({ hostname: "127.0.0.1", port: ready.port }),
      5000,
      "a connection to the held port",
    );
    conn.close();
    t.kill("SIGTERM");
    const end = await t.finish();
    assert.equal(end.code, 0, end.stderr);
    const closed = end.lines.at(-1)!;
    assert.equal(closed.closed, true);
    assert.equal(closed.reason, "SIGTERM");
    assert.equal(closed.port, ready.port);
    assert.deepEqual(onPort(ready.port, "tcp"), []);
  } finally {
    await t.close();
  }
});

Deno.test("hold.ts udp 0 --host ::1: a bound UDP socket that receives datagrams, held by the printed pid", async () => {
  const t = Tester.start("hold", ["udp", "0", "--host", "::1"]);
  try {
    const ready = await t.ready();
    assert.equal(ready.proto, "udp");
    const [s] = onPort(ready.port, "udp");
    assert.equal(s.family, 6);
    assert.equal(s.addr, "::1");
    assert.deepEqual(holdersOf(s.inode), [t.child.pid]);
    // a datagram to it is accepted (no ICMP port unreachable, so a second send does not fail)
    const c = dgram.createSocket("udp6");
    try {
      for (let i = 0; i < 2; i++) {
        await new Promise<void>((res, rej) => c.send("x", ready.port, "::1", (e) => e ? rej(e) : res()));
      }
    } finally {
      c.close();
    }
    t.kill("SIGINT");
    const end = await t.finish();
    assert.equal(end.code, 0, end.stderr);
    assert.equal(end.lines.at(-1)!.reason, "SIGINT");
  } finally {
    await t.close();
  }
});

Deno.test("hold.ts --seconds: closes by itself after about that long and exits 0", async () => {
  const end = await runTester("hold", ["tcp", "0", "--host", "127.0.0.1", "--seconds", "0.3"]);
  assert.equal(end.code, 0, end.stderr);
  assert.equal(end.lines.length, 2);
  const [ready, closed] = end.lines;
  assert.equal(ready.ready, true);
  assert.deepEqual(
    { closed: closed.closed, port: closed.port, pid: closed.pid, reason: closed.reason },
    { closed: true, port: ready.port, pid: ready.pid, reason: "timeout" },
  );
  assert.ok(closed.held_ms >= 295 && closed.held_ms < 5000, `held ${closed.held_ms} ms`);
});

Deno.test("hold.ts: a port in use exits 1 naming the holder's pid and comm (tcp and udp)", async () => {
  for (const proto of ["tcp", "udp"]) {
    const first = Tester.start("hold", [proto, "0", "--host", "127.0.0.1"]);
    try {
      const { port, pid } = await first.ready();
      const end = await runTester("hold", [proto, String(port), "--host", "127.0.0.1"]);
      assert.equal(end.code, 1);
      assert.deepEqual(end.lines, []);
      assert.equal(
        end.stderr.trim(),
        `hold: port ${port}/${proto} is already in use on 127.0.0.1 (held by pid ${pid} comm deno)`,
      );
    } finally {
      await first.close();
    }
  }
});

Deno.test("hold.ts: usage errors exit 2 with the value and what is accepted", async () => {
  const cases: [string[], string][] = [
    [["tcp", "abc"], "hold: PORT=abc: expected a port 0-65535 (0: any free port)"],
    [["tcp", "70000"], "hold: PORT=70000: expected a port 0-65535 (0: any free port)"],
    [["sctp", "5000"], "hold: PROTO=sctp: expected tcp or udp"],
    [["tcp", "5000", "--host", "localhost"], "hold: --host=localhost: expected an IP address to bind"],
    [["tcp", "5000", "--seconds", "soon"], "hold: --seconds=soon: expected a number of seconds >= 0"],
    [["tcp", "5000", "--bogus"], "hold: Unknown option '--bogus'"],
    [["tcp"], "hold: missing argument PORT"],
  ];
  for (const [args, message] of cases) {
    const end = await runTester("hold", args);
    assert.equal(end.code, 2, `${args.join(" ")}: ${end.stderr}`);
    assert.ok(end.stderr.startsWith(message), `${args.join(" ")}: ${end.stderr}`);
    assert.match(end.stderr, /\nusage: hold\.ts tcp\|udp PORT/);
  }
});

Deno.test({
  name: "hold.ts inside a namespace: tcp/udp on 0.0.0.0, ::, 127.0.0.1, ::1 are in that namespace only",
  ignore: skipIf(noNs, "hold.ts inside a namespace"),
  async fn() {
    const ns = await NetNs.create();
    const holders: Tester[] = [];
    try {
      const hosts = ["0.0.0.0", "::", "127.0.0.1", "::1"];
      const specs = hosts.flatMap((host, i) => [
        { proto: "tcp", host, port: 5000 + i },
        { proto: "udp", host, port: 5000 + i },
      ]);
      for (const s of specs) {
        holders.push(Tester.start("hold", [s.proto, String(s.port), "--host", s.host], ns));
      }
      const readies = await Promise.all(holders.map((h) => h.ready()));
      const inNs = scan(ns);
      const outside = new Set(scan().map((s) => s.inode));
      specs.forEach((spec, i) => {
        assert.deepEqual(
          { proto: readies[i].proto, port: readies[i].port, host: readies[i].host },
          spec,
        );
        const found = inNs.filter((s) => s.proto === spec.proto && s.port === spec.port);
        assert.equal(found.length, 1, JSON.stringify(spec));
        assert.equal(found[0].addr, spec.host);
        assert.equal(found[0].family, spec.host.includes(":") ? 6 : 4);
        assert.ok(!outside.has(found[0].inode));
        assert.deepEqual(holdersOf(found[0].inode), [readies[i].pid]);
      });
      // "::" is dual-stack here (bindv6only 0): 0.0.0.0 on its port is taken, for tcp and udp alike
      const bindv6only = (await ns.exec(["cat", "/proc/sys/net/ipv6/bindv6only"])).stdout.trim();
      if (bindv6only === "0") {
        for (const proto of ["tcp", "udp"]) {
          const end = await runTester("hold", [proto, "5001", "--host", "0.0.0.0"], ns);
          assert.equal(end.code, 1);
          assert.equal(
            end.stderr.trim(),
            `hold: port 5001/${proto} is already in use on 0.0.0.0 (held by pid ${
              readies[proto === "tcp" ? 2 : 3].pid
            } comm deno on ::)`,
          );
        }
      }
    } finally {
      for (const h of holders) await h.close();
      await ns.delete();
    }
  },
});

Deno.test({
  name: "hold.ts inside a namespace: 5000/tcp in use on 0.0.0.0, then on 127.0.0.1 (holder bound elsewhere)",
  ignore: skipIf(noNs, "hold.ts in use, in a namespace"),
  async fn() {
    const ns = await NetNs.create();
    const first = Tester.start("hold", ["tcp", "5000"], ns);
    try {
      const { pid } = await first.ready();
      let end = await runTester("hold", ["tcp", "5000"], ns);
      assert.equal(end.code, 1);
      assert.equal(
        end.stderr.trim(),
        `hold: port 5000/tcp is already in use on 0.0.0.0 (held by pid ${pid} comm deno)`,
      );
      end = await runTester("hold", ["tcp", "5000", "--host", "127.0.0.1"], ns);
      assert.equal(end.code, 1);
      assert.equal(
        end.stderr.trim(),
        `hold: port 5000/tcp is already in use on 127.0.0.1 (held by pid ${pid} comm deno on 0.0.0.0)`,
      );
    } finally {
      await first.close();
      await ns.delete();
    }
  },
});

/** setpriv (util-linux) is there to drop to an unprivileged user. */
function setprivReason(): string | undefined {
  if (noNs) return noNs;
  try {
    new Deno.Command("setpriv", { args: ["--version"], stdout: "null", stderr: "null" }).outputSync();
    return undefined;
  } catch {
    return "util-linux's setpriv is not installed";
  }
}

Deno.test({
  name: "hold.ts as an unprivileged user: port 80 exits 1 saying it needs root or CAP_NET_BIND_SERVICE",
  ignore: skipIf(setprivReason(), "hold.ts privileged port as non-root"),
  async fn() {
    // npx's deno sits under /root, which nobody cannot read: the helper copies it out when it must
    await using deno = await denoForUser();
    // a fresh namespace has ip_unprivileged_port_start 1024 even where the host's (a container's) is 0
    const ns = await NetNs.create();
    try {
      const cmd = ns.wrap(deno.command(testerCmd("hold", ["tcp", "80"]).slice(1)));
      const t = Tester.spawn(cmd);
      let end;
      try {
        end = await t.finish();
      } finally {
        await t.close();
      }
      assert.equal(end.code, 1, end.stderr);
      assert.equal(
        end.stderr.trim(),
        "hold: no permission to bind port 80/tcp on 0.0.0.0: ports below 1024 need root or CAP_NET_BIND_SERVICE " +
          "and this runs as uid 65534 (net.ipv4.ip_unprivileged_port_start = 1024); use a port >= 1024 or run as root",
      );
      // the same user may bind 1024
      const ok = Tester.spawn(cmd.map((a, i) => i === cmd.length - 1 ? "1024" : a));
      try {
        assert.equal((await ok.ready()).port, 1024);
      } finally {
        await ok.close();
      }
    } finally {
      await ns.delete();
    }
  },
});
