import assert from "node:assert/strict";
import { isRuntimeOwned, RuntimeSocketFilter } from "./runtime_sockets.ts";
import { NetNs, netnsSkipReason, skipIf } from "../../testing/netns.ts";
import { RuntimeHolder } from "../../testing/runtime_holder.ts";
import { PollingEngine } from "../../watcher/polling_engine.ts";
import { loadWatcherConfig, type WatcherConfig } from "../../watcher/config.ts";
import { envOf } from "../../infra/env.ts";
import { CollectingSink } from "../../testing/sink.ts";

Deno.test("isRuntimeOwned: every holder elsewhere: runtime-owned; one holder inside or none known: not", () => {
  assert.equal(isRuntimeOwned(10, [1]), true);
  assert.equal(isRuntimeOwned(10, [1, 2]), true);
  assert.equal(isRuntimeOwned(10, [1, 10]), false);
  assert.equal(isRuntimeOwned(10, [10]), false);
  assert.equal(isRuntimeOwned(10, []), false, "holders unknown (another pid namespace): nothing says whose");
  assert.equal(isRuntimeOwned(10, [1, undefined]), false, "a holder whose namespace cannot be read");
});

/** A proc-like tree where each pid's ns/net is a file (its inode stands for the namespace). */
function fakeProc(pids: number[]): { dir: string; ino(pid: number): number; [Symbol.dispose](): void } {
  const dir = Deno.makeTempDirSync({ prefix: "pw-nsproc-" });
  for (const pid of pids) {
    Deno.mkdirSync(`${dir}/${pid}/ns`, { recursive: true });
    Deno.writeTextFileSync(`${dir}/${pid}/ns/net`, "");
  }
  return {
    dir,
    ino: (pid) => Deno.statSync(`${dir}/${pid}/ns/net`).ino!,
    [Symbol.dispose]: () => Deno.removeSync(dir, { recursive: true }),
  };
}

Deno.test("RuntimeSocketFilter: hides sockets only a process of another namespace holds; REPORT keeps all", () => {
  using proc = fakeProc([100, 200]);
  const ns = proc.ino(200); // pid 200 is "in the container"; pid 100 ("dockerd") elsewhere
  // 5: a holder whose namespace cannot be read (gone); 6: holders not resolved at all; 7: dockerd again
  const owners = new Map([[1, [100]], [2, [200]], [3, [100, 200]], [4, []], [5, [999, 100]], [7, [100]]]);
  const sockets = [1, 2, 3, 4, 5, 6, 7].map((inode) => ({ inode }));
  const filter = new RuntimeSocketFilter({ proc: proc.dir });
  const kept = filter.keep(ns, sockets, (i) => owners.get(i));
  assert.deepEqual(kept.map((s) => s.inode), [2, 3, 4, 5, 6]);
  assert.equal(filter.hidden, 2);
  assert.equal(filter.hides(ns, [999]), false, "a pid that is gone: its namespace is unknown");
  const all = new RuntimeSocketFilter({ proc: proc.dir, report: true });
  assert.deepEqual(all.keep(ns, sockets, (i) => owners.get(i)).map((s) => s.inode), [1, 2, 3, 4, 5, 6, 7]);
  assert.equal(all.hides(ns, [100]), false);
});

Deno.test("RuntimeSocketFilter: a pid's namespace is read once per ttl", () => {
  using proc = fakeProc([100]);
  const filter = new RuntimeSocketFilter({ proc: proc.dir, ttlMs: 60_000 });
  const ino = filter.netnsOf(100, 0);
  assert.equal(ino, proc.ino(100));
  Deno.removeSync(`${proc.dir}/100`, { recursive: true });
  assert.equal(filter.netnsOf(100, 1000), ino, "within the ttl: remembered");
  assert.equal(filter.netnsOf(100, 61_000), undefined, "after it: read again (gone)");
});

function config(env: Record<string, string>): WatcherConfig {
  const c = loadWatcherConfig(["--all-netns"], envOf(env));
  if (c === "help") throw new Error("help");
  return c;
}

Deno.test("REPORT_RUNTIME_SOCKETS: a bool, off by default", () => {
  assert.equal(config({}).reportRuntimeSockets, false);
  assert.equal(config({ REPORT_RUNTIME_SOCKETS: "1" }).reportRuntimeSockets, true);
  assert.throws(() => config({ REPORT_RUNTIME_SOCKETS: "maybe" }), /REPORT_RUNTIME_SOCKETS="maybe"/);
});

Deno.test({
  name:
    "polling, live: sockets opened in a namespace by a process of another (Docker's DNS) are not reported",
  ignore: skipIf(netnsSkipReason(), "runtime-owned sockets, live"),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "pw-runtime-sockets-" });
    const ns = await NetNs.create();
    let runtime: RuntimeHolder | undefined;
    try {
      runtime = await RuntimeHolder.start(ns.path);
      const own = await ns.holder({ sockets: [{ proto: "tcp", host: "127.0.0.11" }] });
      const nsIno = Deno.statSync(ns.path).ino!;
      assert.notEqual(Deno.statSync(`/proc/${runtime.pid}/ns/net`).ino, nsIno, "the runtime stays outside");
      const ports = [runtime.tcp.port, runtime.udp.port, own.report.sockets[0].port];
      const scan = async (report: boolean) => {
        const sink = new CollectingSink();
        const engine = new PollingEngine({
          config: config({
            WATCH_PORTS: ports.join(","),
            SNAPSHOT_PATH: `${dir}/snap-${report}`,
            HOST_NAME: "node-r",
            ...(report ? { REPORT_RUNTIME_SOCKETS: "1" } : {}),
          }),
          sink,
          env: envOf({ HOST_NAME: "node-r" }),
        });
        await engine.start();
        try {
          await engine.scanOnce();
        } finally {
          await engine.shutdown();
        }
        return sink.sent.filter((e) => e.event === "open" && e.netns === nsIno)
          .map((e) => `${e.proto}/${e.port} ${e.pids.join(",")}`).sort();
      };
      const ownLine = `tcp/${own.report.sockets[0].port} ${own.pid}`;
      assert.deepEqual(await scan(false), [ownLine], "only the socket a process of the namespace holds");
      assert.deepEqual(
        await scan(true),
        [ownLine, `tcp/${runtime.tcp.port} ${runtime.pid}`, `udp/${runtime.udp.port} ${runtime.pid}`].sort(),
        "REPORT_RUNTIME_SOCKETS=1: the runtime's too",
      );
    } finally {
      await runtime?.close();
      await ns.delete();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
