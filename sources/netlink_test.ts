import assert from "node:assert/strict";
import { denoForUser } from "../testing/user_deno.ts";
import dgram from "node:dgram";
import { NetlinkSource, NetlinkUnavailableError } from "./netlink.ts";
import { ProcNetSource } from "./proc_net.ts";
import { type ListeningSocket, socketKey } from "./socket.ts";
import { type HeldSocket, NetNs, netnsSkipReason, run, skipIf, withDeadline } from "../testing/netns.ts";

/** Keys without uid (proto, family, addr, port, inode), sorted. */
const keys = (list: readonly (ListeningSocket | HeldSocket)[]) =>
  list.map((s) => socketKey({ ...s, uid: 0 })).sort();

const threadNetns = () => Deno.readLinkSync("/proc/thread-self/ns/net");

Deno.test("NetlinkSource: this process's listeners, with the inodes /proc/net shows, no established ones", async () => {
  const tcp4 = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const tcp6 = Deno.listen({ hostname: "::", port: 0 });
  const udp = dgram.createSocket({ type: "udp6", ipv6Only: true });
  await new Promise<void>((resolve, reject) => {
    udp.once("error", reject);
    udp.bind(0, "::1", resolve);
  });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: tcp4.addr.port });
  const server = await tcp4.accept();
  const nl = new NetlinkSource();
  try {
    const viaNetlink = nl.scan();
    const viaProc = new ProcNetSource().scan();
    const pick = (list: ListeningSocket[], proto: string, addr: string, port: number) =>
      list.filter((s) => s.proto === proto && s.addr === addr && s.port === port);
    for (
      const [proto, addr, port] of [
        ["tcp", "127.0.0.1", tcp4.addr.port],
        ["tcp", "::", tcp6.addr.port],
        ["udp", "::1", udp.address().port],
      ] as const
    ) {
      const n = pick(viaNetlink, proto, addr, port);
      assert.equal(n.length, 1, `${proto} ${addr}:${port} via netlink`);
      assert.deepEqual(n, pick(viaProc, proto, addr, port));
      assert.equal(n[0].uid, Deno.uid());
    }
    assert.equal(pick(viaNetlink, "tcp", "127.0.0.1", client.localAddr.port).length, 0);
    assert.ok(viaNetlink.every((s) => s.port > 0 && s.inode >= 0));
    assert.ok(viaNetlink.filter((s) => s.proto === "tcp").every((s) => s.addr !== "" && s.port !== 0));
  } finally {
    nl.close();
    client.close();
    server.close();
    tcp4.close();
    tcp6.close();
    await new Promise<void>((r) => udp.close(r));
  }
});

Deno.test("NetlinkSource: the socket stays open across scans; scan() after close() throws", async () => {
  const nl = new NetlinkSource();
  try {
    const before = nl.scan().length;
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const after = nl.scan();
      assert.ok(after.some((s) => s.port === l.addr.port && s.proto === "tcp"));
      assert.ok(after.length >= before);
    } finally {
      l.close();
    }
    assert.ok(!nl.scan().some((s) => s.proto === "tcp" && s.addr === "127.0.0.1" && s.port === l.addr.port));
  } finally {
    nl.close();
  }
  assert.throws(() => nl.scan(), /after close/);
  nl.close(); // idempotent
  await Promise.resolve();
});

Deno.test("NetlinkSource: an unknown namespace path is a NetlinkUnavailableError naming it", () => {
  assert.throws(() => new NetlinkSource({ netns: "/run/netns/pwtest-does-not-exist" }), (e: unknown) => {
    assert.ok(e instanceof NetlinkUnavailableError);
    assert.match(e.message, /\/run\/netns\/pwtest-does-not-exist/);
    assert.match(e.message, /ENOENT/);
    return true;
  });
});

Deno.test("NetlinkSource: without --allow-ffi the error says so and suggests /proc", async () => {
  const script = `import { NetlinkSource } from ${
    JSON.stringify(new URL("./netlink.ts", import.meta.url).href)
  };
try { new NetlinkSource(); console.log("opened"); } catch (e) { console.log(e.name + ": " + e.message); }`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "--no-lock", "-"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(script));
  await w.close();
  const out = await withDeadline(child.output(), 30_000, "deno run without permissions");
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.match(text, /NetlinkUnavailableError: .*--allow-ffi.*fall back to \/proc\/net/, text);
});

Deno.test({
  name: "NetlinkSource: setns into a namespace as an unprivileged user fails with a clear EPERM",
  ignore: skipIf(
    Deno.uid() !== 0 ? "needs root to start a process as nobody" : undefined,
    "NetlinkSource setns EPERM",
  ),
  async fn() {
    const script = `import { NetlinkSource } from ${
      JSON.stringify(new URL("./netlink.ts", import.meta.url).href)
    };
try { new NetlinkSource({ netns: "/proc/self/ns/net" }); console.log("opened"); }
catch (e) { console.log(e.name + ": " + e.message); }
console.log("thread netns", Deno.readLinkSync("/proc/thread-self/ns/net") === Deno.readLinkSync("/proc/self/ns/net"));`;
    const dir = Deno.makeTempDirSync({ prefix: "pwtest-" });
    // a deno binary nobody can run (npx caches it under /root, which nobody cannot search)
    await using deno = await denoForUser();
    try {
      Deno.chmodSync(dir, 0o755);
      Deno.writeTextFileSync(`${dir}/probe.ts`, script);
      // its own namespace: the path opens, but setns(2) needs CAP_SYS_ADMIN
      const r = await run(
        deno.command(["run", "--no-lock", "--no-config", "--allow-all", `${dir}/probe.ts`]),
        { check: false, timeoutMs: 30_000 },
      );
      const text = r.stdout + r.stderr;
      if (/Permission denied|EACCES/.test(text) && !/NetlinkUnavailableError/.test(text)) {
        console.log(`skipping the EPERM check: nobody cannot read the sources here: ${text.trim()}`);
        return;
      }
      assert.match(
        text,
        /NetlinkUnavailableError: .*setns\(\/proc\/self\/ns\/net, CLONE_NEWNET\).*EPERM/,
        text,
      );
      assert.match(text, /thread netns true/, text);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "netlink and /proc agree in a fresh namespace: v4, v6, v4-mapped, UDP; many established excluded",
  ignore: skipIf(netnsSkipReason(), "netlink vs /proc cross-check"),
  async fn() {
    const ns = await NetNs.create();
    try {
      const h = await ns.holder({
        sockets: [
          { proto: "tcp", host: "0.0.0.0", connect: 150 },
          { proto: "tcp", host: "127.0.0.1", connect: 50 },
          { proto: "tcp", host: "::", connect: 50 },
          { proto: "tcp", host: "::", v6only: false, connect: 20 },
          { proto: "tcp", host: "::1", connect: 20 },
          { proto: "tcp", host: "::ffff:127.0.0.1", connect: 20 },
          { proto: "udp", host: "0.0.0.0" },
          { proto: "udp", host: "127.0.0.1", connect: 3 },
          { proto: "udp", host: "::" },
          { proto: "udp", host: "::", v6only: false },
          { proto: "udp", host: "::1", connect: 2 },
          { proto: "udp", host: "::ffff:127.0.0.1" },
          // enough records for multi-part dumps (88 bytes each; the kernel sends at most ~32 KiB per part)
          { proto: "tcp", host: "127.0.0.1", count: 500 },
          { proto: "udp", host: "::1", count: 500 },
        ],
      });
      const hostNs = threadNetns();
      const nl = new NetlinkSource({ netns: ns.path });
      try {
        assert.equal(threadNetns(), hostNs, "the JS thread went back to its namespace");
        const viaNetlink = nl.scan();
        const viaProc = new ProcNetSource({ root: `/proc/${h.pid}/net` }).scan();
        const expected = keys(h.report.sockets);
        assert.equal(expected.length, 12 + 1000);
        const listed = new Set(viaNetlink.map((s) => s.inode));
        for (const c of h.report.connectedUdp) {
          assert.ok(!listed.has(c.inode), `connected UDP ${c.inode} listed`);
        }
        assert.deepEqual(keys(viaNetlink), expected);
        assert.deepEqual(keys(viaProc), expected);
        assert.ok(nl.stats.recvCalls > 8, `expected multi-part dumps, got ${nl.stats.recvCalls} recv calls`);
        assert.equal(h.report.established.length, 2 * 310);
        const inodes = new Set(viaNetlink.map((s) => s.inode));
        for (const e of h.report.established) assert.ok(!inodes.has(e), `established ${e} listed`);
        assert.ok(viaNetlink.every((s) => s.uid === 0));
        // the host's own view does not see the namespace's sockets
        const host = new NetlinkSource();
        try {
          const hostInodes = new Set(host.scan().map((s) => s.inode));
          assert.ok(h.report.sockets.every((s) => !hostInodes.has(s.inode)));
        } finally {
          host.close();
        }
        // the netlink socket stays in the namespace: new sockets there show up in later scans
        const h2 = await ns.holder({
          sockets: [{ proto: "tcp", host: "::1" }, { proto: "udp", host: "0.0.0.0" }],
        });
        assert.deepEqual(
          keys(nl.scan().filter((s) => h2.report.sockets.some((x) => x.inode === s.inode))),
          keys(h2.report.sockets),
        );
        await h2.close();
        assert.ok(!nl.scan().some((s) => h2.report.sockets.some((x) => x.inode === s.inode)));
      } finally {
        nl.close();
      }
      // the /proc/<pid>/ns/net form of the path
      const byPid = new NetlinkSource({ netns: `/proc/${h.pid}/ns/net` });
      try {
        assert.equal(byPid.scan().length, 12 + 1000);
      } finally {
        byPid.close();
      }
      assert.equal(threadNetns(), hostNs);
    } finally {
      await ns.delete();
    }
  },
});
