import assert from "node:assert/strict";
import { envOf } from "../../infra/env.ts";
import { makeTestCgroup, netnsCgroupSkipReason as realSkipReason, randomHex } from "./testing/cgroup.ts";
import { netnsInode } from "./identity.ts";
import { discoverNamespaces, namedNamespaces, NamespaceWatcher, type NetNamespace } from "./namespaces.ts";
import { ProcNetSource } from "../../sources/proc_net.ts";
import { type Holder, NetNs, skipIf } from "../../testing/netns.ts";
import { waitUntil } from "../../infra/wait.ts";

const FIXTURES = new URL("./testing/fixtures/cgroup/", import.meta.url);
const fixture = (name: string) => Deno.readTextFileSync(new URL(name, FIXTURES));
const D = "d548c5b83fa61d8e3bd86ad42a7ffea9b7c86e3f9d8095c1577d3e1270bb9420";
const HOST = envOf({ HOST_NAME: "node-a", CONTAINER_ID: "must-not-apply", CONTAINER_NAME: "nor-this" });

const byInode = (list: readonly NetNamespace[], inode: number) => list.find((n) => n.inode === inode);
const inodes = (list: readonly NetNamespace[]) => list.map((n) => n.inode);

/** A proc-like tree: pid directories with an ns/net link "net:[N]" (dangling, as readlink needs) and a cgroup. */
class FakeProc {
  readonly dir = Deno.makeTempDirSync({ prefix: "pw-proc-" });
  add(pid: number, netInode: number, cgroup = "host-v2-init.cgroup"): void {
    Deno.mkdirSync(`${this.dir}/${pid}/ns`, { recursive: true });
    Deno.symlinkSync(`net:[${netInode}]`, `${this.dir}/${pid}/ns/net`);
    Deno.writeTextFileSync(`${this.dir}/${pid}/cgroup`, fixture(cgroup));
  }
  exit(pid: number): void {
    Deno.removeSync(`${this.dir}/${pid}`, { recursive: true });
  }
  [Symbol.dispose](): void {
    Deno.removeSync(this.dir, { recursive: true });
  }
}

Deno.test("discoverNamespaces: groups pids by inode, lowest pid is the member, identity from its cgroup", () => {
  using proc = new FakeProc();
  proc.add(1, 100);
  proc.add(31, 200, "docker-v2-systemd.cgroup");
  proc.add(30, 200, "docker-v2-systemd.cgroup");
  proc.add(7, 100);
  Deno.mkdirSync(`${proc.dir}/40`); // a process whose ns link is gone (exited, or a zombie): skipped
  Deno.mkdirSync(`${proc.dir}/self`); // not a pid
  const all = discoverNamespaces(proc.dir, { env: HOST, netnsDir: `${proc.dir}/no-netns` });
  assert.deepEqual(all, [
    {
      inode: 100,
      pid: 1,
      pids: [1, 7],
      identity: { host: "node-a", container_id: null, container_name: null, runtime: null },
      path: `${proc.dir}/1/ns/net`,
    },
    {
      inode: 200,
      pid: 30,
      pids: [30, 31],
      identity: { host: "node-a", container_id: D, container_name: null, runtime: "docker" },
      path: `${proc.dir}/30/ns/net`,
    },
  ]);
});

Deno.test("NamespaceWatcher: added, removed, member switched, and a reused inode is a new namespace", () => {
  using proc = new FakeProc();
  proc.add(1, 100);
  proc.add(30, 200, "docker-v2-systemd.cgroup");
  proc.add(31, 200, "docker-v2-systemd.cgroup");
  const w = new NamespaceWatcher(proc.dir, { env: HOST, netnsDir: `${proc.dir}/no-netns` });
  let r = w.refresh();
  assert.deepEqual(inodes(r.added), [100, 200]);
  assert.deepEqual([r.removed, r.memberChanged], [[], []]);

  r = w.refresh();
  assert.deepEqual([r.added, r.removed, r.memberChanged], [[], [], []]);
  assert.deepEqual(inodes(r.current), [100, 200]);

  // A lower pid joining does not move the member; the member exiting does.
  proc.add(20, 200, "docker-v2-systemd.cgroup");
  r = w.refresh();
  assert.equal(byInode(r.current, 200)?.pid, 30);
  assert.deepEqual(byInode(r.current, 200)?.pids, [20, 30, 31]);
  assert.deepEqual([r.added, r.removed, r.memberChanged], [[], [], []]);
  proc.exit(30);
  r = w.refresh();
  assert.deepEqual(r.memberChanged.map((n) => [n.inode, n.pid, n.path]), [[
    200,
    20,
    `${proc.dir}/20/ns/net`,
  ]]);
  assert.equal(byInode(r.current, 200)?.identity.container_id, D);
  assert.deepEqual([r.added, r.removed], [[], []]);

  // A new namespace appears; one vanishes.
  proc.add(50, 300);
  proc.exit(20);
  proc.exit(31);
  r = w.refresh();
  assert.deepEqual(inodes(r.added), [300]);
  assert.deepEqual(r.removed.map((n) => [n.inode, n.pid]), [[200, 20]]);
  assert.deepEqual(inodes(w.current), [100, 300]);

  // Inode 300 freed and reused by another namespace before the next refresh: removed and added.
  proc.exit(50);
  proc.add(60, 300, "podman-v2-systemd.cgroup");
  r = w.refresh();
  assert.deepEqual(r.removed.map((n) => [n.inode, n.pid]), [[300, 50]]);
  assert.deepEqual(r.added.map((n) => [n.inode, n.pid, n.identity.runtime]), [[300, 60, "podman"]]);
});

Deno.test("discoverNamespaces: this process's namespace on the real /proc", () => {
  const all = discoverNamespaces();
  const own = byInode(all, netnsInode());
  assert.ok(own, "own namespace found");
  assert.ok(own.pids.includes(Deno.pid));
  assert.equal(own.pid, Math.min(...own.pids));
  assert.equal(own.path, `/proc/${own.pid}/ns/net`);
  const seen = new Set<number>();
  for (const ns of all) {
    for (const p of ns.pids) {
      assert.ok(!seen.has(p), `pid ${p} in one namespace only`);
      seen.add(p);
    }
    assert.ok(ns.pid === 0 ? ns.pids.length === 0 : ns.pids[0] === ns.pid);
  }
  assert.deepEqual(inodes(all), inodes(all).toSorted((a, b) => a - b));
  const w = new NamespaceWatcher();
  assert.ok(byInode(w.refresh().added, own.inode));
  const again = w.refresh();
  assert.ok(!byInode(again.added, own.inode) && !byInode(again.removed, own.inode));
});

// ---------------------------------------------------------------------------------------------------------------
// Real namespaces and cgroups (root).

/** /etc/netns/NAME/hostname: `ip netns exec NAME` bind-mounts it over /etc/hostname for what it runs. */
function netnsEtcHostname(ns: NetNs, hostname: string) {
  const parentExisted = (() => {
    try {
      return Deno.statSync("/etc/netns").isDirectory;
    } catch {
      return false;
    }
  })();
  Deno.mkdirSync(`/etc/netns/${ns.name}`, { recursive: true });
  Deno.writeTextFileSync(`/etc/netns/${ns.name}/hostname`, `${hostname}\n`);
  return () => {
    Deno.removeSync(`/etc/netns/${ns.name}`, { recursive: true });
    if (!parentExisted) {
      try {
        Deno.removeSync("/etc/netns"); // only when empty
      } catch { /* another test's namespace uses it */ }
    }
  };
}

Deno.test({
  name:
    "real: two namespaces found and attributed (one in a docker-<id>.scope cgroup); each scan sees its own port",
  ignore: skipIf(realSkipReason(), "real namespaces discovery"),
  async fn() {
    const id = randomHex(32);
    const cleanups: (() => void | Promise<void>)[] = [];
    try {
      const a = await NetNs.create();
      cleanups.unshift(() => a.delete());
      const b = await NetNs.create();
      cleanups.unshift(() => b.delete());
      cleanups.unshift(netnsEtcHostname(b, "web-svc"));
      const ha = await a.holder({ sockets: [{ proto: "tcp", host: "127.0.0.1" }] });
      const hb = await b.holder({
        sockets: [{ proto: "tcp", host: "127.0.0.1" }, { proto: "udp", host: "::1" }],
      });
      const cg = makeTestCgroup(`docker-${id}.scope`);
      cleanups.push(() => cg.remove()); // after the namespaces (and their holders) are gone
      cg.add(hb.pid);

      const all = discoverNamespaces("/proc", { env: envOf({ HOST_NAME: "node-a" }) });
      const nsA = byInode(all, Deno.statSync(a.path).ino!);
      const nsB = byInode(all, Deno.statSync(b.path).ino!);
      assert.ok(nsA && nsB, "both namespaces discovered");
      assert.deepEqual([nsA.pid, nsA.pids, nsA.name, nsA.path], [
        ha.pid,
        [ha.pid],
        a.name,
        `/proc/${ha.pid}/ns/net`,
      ]);
      assert.deepEqual([nsB.pid, nsB.pids, nsB.name], [hb.pid, [hb.pid], b.name]);
      assert.deepEqual(nsA.identity, {
        host: "node-a",
        container_id: null,
        container_name: null,
        runtime: null,
      });
      assert.deepEqual(nsB.identity, {
        host: "node-a",
        container_id: id,
        container_name: "web-svc", // its /etc/hostname, read through /proc/<pid>/root in its mount namespace
        runtime: "docker",
      });
      assert.equal(byInode(all, netnsInode())?.identity.container_id ?? null, null);

      const inodesOf = (h: Holder) => h.report.sockets.map((s) => s.inode);
      const scan = (ns: NetNamespace) =>
        new ProcNetSource({ root: `/proc/${ns.pid}/net` }).scan().map((s) => s.inode);
      const seenA = scan(nsA);
      const seenB = scan(nsB);
      for (const i of inodesOf(ha)) assert.ok(seenA.includes(i) && !seenB.includes(i), `A's socket ${i}`);
      for (const i of inodesOf(hb)) assert.ok(seenB.includes(i) && !seenA.includes(i), `B's socket ${i}`);
      assert.equal(seenA.length, 1, "A holds only its one listener");
      assert.equal(seenB.length, 2, "B holds its two sockets");
    } finally {
      for (const c of cleanups) await c();
    }
  },
});

Deno.test({
  name:
    "real: NamespaceWatcher reports a namespace made after the first refresh, its member switch, its removal",
  ignore: skipIf(realSkipReason(), "real NamespaceWatcher"),
  async fn() {
    const w = new NamespaceWatcher("/proc", { env: envOf({ HOST_NAME: "node-a" }) });
    const first = w.refresh();
    assert.equal(first.added.length, first.current.length);
    const ns = await NetNs.create();
    try {
      const inode = Deno.statSync(ns.path).ino!;
      assert.equal(byInode(first.current, inode), undefined);

      // Named, no process in it yet.
      let r = w.refresh();
      assert.deepEqual(byInode(r.added, inode), {
        inode,
        pid: 0,
        pids: [],
        identity: { host: "node-a", container_id: null, container_name: null, runtime: null },
        path: ns.path,
        name: ns.name,
      });
      assert.ok(namedNamespaces().get(ns.name) === inode);

      // A process enters: same namespace, now with a member.
      const h = await ns.holder({ sockets: [{ proto: "tcp", host: "127.0.0.1" }], fork: true });
      const child = h.report.childPid!;
      r = w.refresh();
      assert.deepEqual(byInode(r.memberChanged, inode)?.pids, [h.pid, child].sort((x, y) => x - y));
      assert.equal(byInode(r.memberChanged, inode)?.pid, h.pid);
      assert.ok(!byInode(r.added, inode) && !byInode(r.removed, inode));

      // The member exits; the forked child keeps the namespace and becomes the member.
      await h.exitParent();
      r = await waitUntil(
        "the member to switch to the forked child",
        () => {
          const x = w.refresh();
          return byInode(x.current, inode)?.pid === child ? x : undefined;
        },
        5_000,
        10,
      );
      assert.deepEqual(byInode(r.current, inode)?.pids, [child]);
      assert.equal(byInode(r.current, inode)?.path, `/proc/${child}/ns/net`);
      assert.ok(!byInode(r.added, inode) && !byInode(r.removed, inode));

      // Deleted (its processes killed, the bind mount gone).
      await ns.delete();
      r = await waitUntil(
        "the deleted namespace to be reported removed",
        () => {
          const x = w.refresh();
          return byInode(x.removed, inode) ? x : undefined;
        },
        5_000,
        10,
      );
      assert.equal(byInode(r.current, inode), undefined);
      assert.equal(byInode(w.refresh().removed, inode), undefined); // reported once
    } finally {
      await ns.delete();
    }
  },
});
