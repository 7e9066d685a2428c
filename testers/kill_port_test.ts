import assert from "node:assert/strict";
import { NetNs, skipIf } from "../testing/netns.ts";
import { nsSkipReason, onPort, runTester, Tester } from "./harness_test.ts";

const noNs = nsSkipReason();

Deno.test("kill_port.ts PORT: kills the holder (found through netlink and /proc), reports it, and the port is free", async () => {
  const holder = Tester.start("hold", ["tcp", "0", "--host", "127.0.0.1"]);
  try {
    const { port, pid } = await holder.ready();
    const end = await runTester("kill_port", [String(port)]);
    assert.equal(end.code, 0, end.stderr);
    const [killed, summary] = end.lines;
    assert.equal(killed.killed, pid);
    assert.equal(killed.comm, "deno");
    assert.match(killed.cmdline, /hold\.ts tcp 0 --host 127\.0\.0\.1$/);
    assert.equal(killed.signal, "SIGTERM");
    assert.deepEqual(killed.sockets, [`tcp 127.0.0.1:${port}`]);
    assert.deepEqual(
      { ...summary, source: "" },
      { port, proto: ["tcp", "udp"], signal: "SIGTERM", killed: [pid], freed: true, source: "" },
    );
    // the holder got SIGTERM: it closed its socket, said so and exited 0
    const h = await holder.finish();
    assert.equal(h.code, 0);
    assert.equal(h.lines.at(-1)!.reason, "SIGTERM");
    assert.deepEqual(onPort(port), []);
  } finally {
    await holder.close();
  }
});

Deno.test("kill_port.ts: nothing holds the port exits 1; a bad port, proto or signal exits 2", async () => {
  // a port that was just free: bind 0, note it, close it
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  let end = await runTester("kill_port", [String(port), "--proto", "tcp"]);
  assert.equal(end.code, 1);
  assert.equal(
    end.stderr.trim(),
    `kill_port: nothing holds port ${port}/tcp here (no listening TCP or bound UDP socket on it in this network namespace)`,
  );
  const cases: [string[], string][] = [
    [["abc"], "kill_port: PORT=abc: expected a port 1-65535"],
    [["0"], "kill_port: PORT=0: expected a port 1-65535"],
    [["5000", "--proto", "sctp"], "kill_port: --proto=sctp: expected tcp or udp"],
    [["5000", "--signal", "HUP"], "kill_port: --signal=HUP: expected TERM or KILL"],
    [[], "kill_port: missing argument PORT"],
  ];
  for (const [args, message] of cases) {
    end = await runTester("kill_port", args);
    assert.equal(end.code, 2, `${args.join(" ")}: ${end.stderr}`);
    assert.ok(end.stderr.startsWith(message), `${args.join(" ")}: ${end.stderr}`);
  }
});

Deno.test({
  name:
    "kill_port.ts in a namespace: --proto udp kills only the UDP holder, --signal KILL the TCP one, not outside",
  ignore: skipIf(noNs, "kill_port.ts in a namespace"),
  async fn() {
    // a holder of the same port in the test's own namespace must not be touched
    const outside = Tester.start("hold", ["tcp", "0", "--host", "127.0.0.1"]);
    let ns: NetNs | undefined;
    let tcp: Tester | undefined, udp: Tester | undefined;
    try {
      const o = await outside.ready();
      const port = String(o.port);
      ns = await NetNs.create();
      tcp = Tester.start("hold", ["tcp", port], ns);
      udp = Tester.start("hold", ["udp", port, "--host", "::"], ns);
      const [t, u] = await Promise.all([tcp.ready(), udp.ready()]);
      let end = await runTester("kill_port", [port, "--proto", "udp"], ns);
      assert.equal(end.code, 0, end.stderr);
      assert.equal(end.lines[0].killed, u.pid);
      assert.deepEqual(end.lines[0].sockets, [`udp [::]:${port}`]);
      assert.deepEqual(end.lines[1].killed, [u.pid]);
      assert.equal((await udp.finish()).code, 0);
      assert.equal(tcp.exited, undefined);
      assert.equal(onPort(o.port, "tcp", ns).length, 1);

      end = await runTester("kill_port", [port, "--signal", "KILL"], ns);
      assert.equal(end.code, 0, end.stderr);
      assert.deepEqual(end.lines.map((l) => l.killed), [t.pid, [t.pid]]);
      assert.equal(end.lines[0].signal, "SIGKILL");
      assert.equal(end.lines[1].freed, true);
      assert.equal((await tcp.finish()).signal, "SIGKILL");
      assert.deepEqual(onPort(o.port, undefined, ns), []);

      end = await runTester("kill_port", [port], ns);
      assert.equal(end.code, 1);
      assert.ok(end.stderr.startsWith(`kill_port: nothing holds port ${port}/tcp+udp here`), end.stderr);
      // the outside holder is alive and still holds the port in its namespace
      assert.equal(outside.exited, undefined);
      assert.equal(onPort(o.port, "tcp").length, 1);
    } finally {
      for (const h of [tcp, udp, outside]) await h?.close();
      await ns?.delete();
    }
  },
});

Deno.test({
  name:
    "kill_port.ts: several holders of one port (a listener and an HTTP server on two addresses) are all killed",
  ignore: skipIf(noNs, "kill_port.ts several holders"),
  async fn() {
    const ns = await NetNs.create();
    const a = Tester.start("hold", ["tcp", "6000", "--host", "127.0.0.1"], ns);
    const b = Tester.start("http", ["6000", "--host", "::1"], ns);
    try {
      const [ra, rb] = await Promise.all([a.ready(), b.ready()]);
      const end = await runTester("kill_port", ["6000"], ns);
      assert.equal(end.code, 0, end.stderr);
      const killed = end.lines.filter((l) => typeof l.killed === "number");
      assert.deepEqual(killed.map((l) => l.killed).sort(), [ra.pid, rb.pid].sort());
      assert.deepEqual(killed.flatMap((l) => l.sockets).sort(), ["tcp 127.0.0.1:6000", "tcp [::1]:6000"]);
      assert.equal(end.lines.at(-1)!.freed, true);
      assert.equal((await a.finish()).code, 0);
      assert.equal((await b.finish()).code, 0);
    } finally {
      await a.close();
      await b.close();
      await ns.delete();
    }
  },
});
