import assert from "node:assert/strict";
import { NetlinkSource } from "../sources/netlink.ts";
import { PidResolver } from "./pid_resolver.ts";
import { type InodePids, walkFfi, walkPure } from "./proc_walk.ts";
import { ProcNetSource } from "../sources/proc_net.ts";
import { Holder, pythonSkipReason, run, skipIf } from "../testing/netns.ts";
import { waitUntil } from "../infra/wait.ts";
import { denoForUser } from "../testing/user_deno.ts";

const noPython = pythonSkipReason();
const WALKERS = ["ffi", "pure"] as const;

const same = (a: InodePids, b: InodePids) =>
  a.size === b.size && [...a].every(([inode, pids]) => JSON.stringify(b.get(inode)) === JSON.stringify(pids));

Deno.test({
  name: "walkFfi and walkPure agree on every socket of the machine, and find a holder's sockets",
  ignore: skipIf(noPython, "walkFfi vs walkPure"),
  async fn() {
    const h = await Holder.start({
      sockets: [{ proto: "tcp", host: "127.0.0.1", connect: 2 }, { proto: "udp", host: "::1" }],
    });
    try {
      // other processes may open or close sockets between the two walks: retry until a quiet moment
      await waitUntil("the FFI and pure walks to agree", () => same(walkFfi(), walkPure()), 5_000, 10);
      const all = walkFfi();
      for (const s of h.report.sockets) assert.deepEqual(all.get(s.inode), [h.pid]);
      for (const inode of h.report.established) assert.deepEqual(all.get(inode), [h.pid]);
      const want = new Set([h.report.sockets[0].inode, 1]);
      for (const walk of [walkFfi, walkPure]) {
        assert.deepEqual([...walk(want)], [[h.report.sockets[0].inode, [h.pid]]], walk.name);
      }
    } finally {
      await h.close();
    }
  },
});

for (const walker of WALKERS) {
  Deno.test({
    name: `PidResolver (${walker}): a forked child keeps the socket after its parent exits`,
    ignore: skipIf(noPython, `PidResolver ${walker} fork`),
    async fn() {
      const h = await Holder.start({ sockets: [{ proto: "tcp", host: "127.0.0.1" }], fork: true });
      try {
        const childPid = h.report.childPid!;
        const inode = h.report.sockets[0].inode;
        const r = new PidResolver({ walker });
        assert.equal(r.walker, walker);
        assert.deepEqual(r.resolve([inode]).get(inode), [h.pid, childPid].sort((a, b) => a - b));
        assert.equal(r.stats.walks, 1);
        // cached while both live
        assert.deepEqual(r.resolve([inode]).get(inode), [h.pid, childPid].sort((a, b) => a - b));
        assert.equal(r.stats.walks, 1);
        await h.exitParent();
        // the parent is gone: its fd count is gone, so it drops out without a walk of /proc
        assert.deepEqual(r.resolve([inode]).get(inode), [childPid]);
        assert.equal(r.stats.walks, 1);
        // the socket is still listening, held by the child alone
        assert.ok(new ProcNetSource().scan().some((s) => s.inode === inode));
        assert.equal(r.processInfo(h.pid), undefined);
        const info = r.processInfo(childPid);
        assert.ok(info, "child info");
        assert.match(info.comm, /^python3/);
      } finally {
        await h.close();
      }
    },
  });

  Deno.test({
    name: `PidResolver (${walker}): SO_REUSEPORT, two processes on one port: both pids`,
    ignore: skipIf(noPython, `PidResolver ${walker} reuseport`),
    async fn() {
      const a = await Holder.start({
        sockets: [{ proto: "tcp", host: "127.0.0.1", reuseport: true }, {
          proto: "udp",
          host: "::1",
          reuseport: true,
        }],
      });
      let b: Holder | undefined;
      try {
        const [tcp, udp] = a.report.sockets;
        b = await Holder.start({
          sockets: [{ proto: "tcp", host: "127.0.0.1", port: tcp.port, reuseport: true }, {
            proto: "udp",
            host: "::1",
            port: udp.port,
            reuseport: true,
          }],
        });
        // two sockets per port, each with its own inode, in both sources
        const sources = [new ProcNetSource(), new NetlinkSource()];
        try {
          for (const src of sources) {
            const found = src.scan();
            for (const [proto, port] of [["tcp", tcp.port], ["udp", udp.port]] as const) {
              const inodes = found.filter((s) => s.proto === proto && s.port === port).map((s) => s.inode)
                .sort();
              const want = [a, b].map((h) => h.report.sockets.find((s) => s.proto === proto)!.inode).sort();
              assert.deepEqual(inodes, want, `${src.name} ${proto}`);
            }
          }
        } finally {
          for (const src of sources) src.close();
        }
        const r = new PidResolver({ walker });
        const inodes = [...a.report.sockets, ...b.report.sockets].map((s) => s.inode);
        const got = r.resolve(inodes);
        for (const h of [a, b]) for (const s of h.report.sockets) assert.deepEqual(got.get(s.inode), [h.pid]);
        const pidsOnPort = new Set(
          [a, b].flatMap((h) =>
            h.report.sockets.filter((s) => s.proto === "tcp").map((s) => got.get(s.inode)!)
          )
            .flat(),
        );
        assert.deepEqual([...pidsOnPort].sort((x, y) => x - y), [a.pid, b.pid].sort((x, y) => x - y));
      } finally {
        await b?.close();
        await a.close();
      }
    },
  });
}

for (const walker of WALKERS) {
  Deno.test({
    name: `PidResolver (${walker}): holders stay exact: a fork adds the child, the parent's close removes it`,
    ignore: skipIf(noPython, `PidResolver ${walker} holders`),
    async fn() {
      const h = await Holder.start({
        sockets: [{ proto: "tcp", host: "127.0.0.1" }, { proto: "udp", host: "::1" }],
      });
      try {
        const inodes = h.report.sockets.map((s) => s.inode);
        const r = new PidResolver({ walker });
        for (const pids of r.resolve(inodes).values()) assert.deepEqual(pids, [h.pid]);
        const child = await h.fork();
        // a new pid was handed out: the new process's fds are read, and it holds both sockets
        for (const pids of r.resolve(inodes).values()) {
          assert.deepEqual(
            pids,
            [h.pid, child].sort((a, b) => a - b),
          );
        }
        await h.closeSockets();
        // the parent's fd count changed: its fds are read again, and it holds neither
        for (const pids of r.resolve(inodes).values()) assert.deepEqual(pids, [child]);
        assert.equal(r.stats.walks, 1, "one walk of /proc, the first");
        assert.ok(r.stats.rereads >= 1);
        assert.deepEqual(r.socketsOf(h.pid), new Set());
        assert.deepEqual(r.socketsOf(child), new Set(inodes));
      } finally {
        await h.close();
      }
    },
  });
}

for (const [walker, count] of [["ffi", 1], ["pure", 1], ["ffi", 6]] as const) {
  Deno.test({
    name:
      `PidResolver (${walker}): a holder of ${2 * count} sockets that closes them and opens as many files ` +
      `drops out (${count > 1 ? "it ran: its threads' scheduler counters moved" : "a readlink per socket"})`,
    ignore: skipIf(noPython, `PidResolver ${walker} swap ${count}`),
    async fn() {
      const h = await Holder.start({
        sockets: [{ proto: "tcp", host: "127.0.0.1", count }, { proto: "udp", host: "::1", count }],
      });
      try {
        const inodes = h.report.sockets.map((s) => s.inode);
        const r = new PidResolver({ walker });
        for (const pids of r.resolve(inodes).values()) assert.deepEqual(pids, [h.pid]);
        r.resolve(inodes); // the fds each socket is held through are known from here on
        r.resolve(inodes); // and, the holder idle, its threads' scheduler counters
        const rereads = r.stats.rereads;
        r.resolve(inodes);
        assert.equal(r.stats.rereads, rereads, "an idle holder is not read again");
        await h.swapSockets();
        // the same number of fds, and the same fd numbers, now files: each held fd is checked
        for (const pids of r.resolve(inodes).values()) assert.deepEqual(pids, []);
        assert.equal(r.stats.walks, 1);
      } finally {
        await h.close();
      }
    },
  });
}

Deno.test({
  name: "PidResolver: cache hits skip the walk; unknown inodes are negative-cached; idle entries are dropped",
  ignore: skipIf(noPython, "PidResolver cache"),
  async fn() {
    const h = await Holder.start({ sockets: [{ proto: "udp", host: "127.0.0.1" }] });
    try {
      const inode = h.report.sockets[0].inode;
      const r = new PidResolver({ maxIdleCalls: 3 });
      const unknown = 1; // no socket has inode 1
      assert.deepEqual([...r.resolve([inode, unknown])], [[inode, [h.pid]], [unknown, []]]);
      assert.equal(r.stats.walks, 1);
      r.resolve([inode, unknown]);
      assert.equal(r.stats.walks, 1, "both answered from the cache");
      assert.equal(r.stats.hits, 2);
      // only `inode` asked for from now on: `unknown` is dropped after 3 calls
      r.resolve([inode]);
      r.resolve([inode]);
      assert.equal(r.size, 2);
      r.resolve([inode]);
      assert.equal(r.size, 1);
      assert.equal(r.stats.walks, 1);
      // with no negative TTL an unknown inode is looked for every time
      const eager = new PidResolver({ negativeTtlMs: 0 });
      eager.resolve([unknown]);
      eager.resolve([unknown]);
      assert.equal(eager.stats.walks, 2);
      // the holder closes its socket and exits: it drops out of the entry (its fds are gone), without a walk
      await h.close();
      assert.deepEqual(r.resolve([inode]).get(inode), []);
      assert.equal(r.stats.walks, 1);
    } finally {
      await h.close();
    }
  },
});

Deno.test("PidResolver.processInfo: this process, and undefined for a pid that does not exist", () => {
  const r = new PidResolver();
  const me = r.processInfo(Deno.pid);
  assert.ok(me);
  assert.equal(me.pid, Deno.pid);
  assert.equal(me.uid, Deno.uid());
  assert.ok(me.comm.length > 0 && me.comm.length <= 15);
  assert.ok(me.cmdline.includes("test"), me.cmdline);
  assert.ok(!me.cmdline.endsWith(" "));
  assert.equal(r.processInfo(2 ** 30), undefined);
});

Deno.test("PidResolver: own sockets resolve to Deno.pid with both walkers", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const inode = new ProcNetSource().scan().find((s) => s.proto === "tcp" && s.port === l.addr.port)!.inode;
    for (const walker of WALKERS) {
      assert.deepEqual(new PidResolver({ walker }).resolve([inode]).get(inode), [Deno.pid], walker);
    }
  } finally {
    l.close();
  }
  await Promise.resolve();
});

Deno.test({
  name: "walkers as an unprivileged user: other users' fd dirs are skipped silently, both still agree",
  ignore: skipIf(
    Deno.uid() !== 0 ? "needs root to start a process as nobody" : undefined,
    "walkers as nobody",
  ),
  async fn() {
    // npx's deno sits under /root, which nobody cannot read: the helper copies it out when it must
    await using deno = await denoForUser();
    const dir = deno.dir;
    const mod = JSON.stringify(new URL("./proc_walk.ts", import.meta.url).href);
    Deno.writeTextFileSync(
      `${dir}/probe.ts`,
      `import { walkFfi, walkPure } from ${mod};
const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const a = walkFfi(), b = walkPure();
const mine = [...a].filter(([, pids]) => pids.includes(Deno.pid)).length;
console.log("ok", a.size === b.size, mine);
l.close();`,
    );
    const r = await run(
      deno.command(["run", "--no-lock", "--no-config", "--allow-all", `${dir}/probe.ts`]),
      { check: false, timeoutMs: 30_000 },
    );
    assert.match(r.stdout, /^ok true [1-9]\d*/, r.stdout + r.stderr);
  },
});
