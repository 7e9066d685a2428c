import assert from "node:assert/strict";
import { Holder, NetNs, skipIf } from "../testing/netns.ts";
import {
  makeTestCgroup,
  netnsCgroupSkipReason as cgroupSkipReason,
  randomHex,
} from "../pipeline/scope/testing/cgroup.ts";
import { WatcherProc } from "./testing/watcher_proc.ts";

Deno.test({
  name:
    "host-wide (--all-netns): one watcher sees two namespaces, each event attributed to its namespace and cgroup",
  ignore: skipIf(cgroupSkipReason(), "host-wide watcher"),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "portwatch-hostwide-test-" });
    const a = await NetNs.create();
    const b = await NetNs.create();
    const id = randomHex(32);
    const cg = makeTestCgroup(`docker-${id}.scope`);
    const w = WatcherProc.start(
      {
        SCAN_INTERVAL: "0.1",
        WATCH_PORTS: "7201",
        SNAPSHOT_PATH: `${dir}/snapshot`,
        HOST_NAME: "node-7",
      },
      undefined,
      ["--all-netns"],
    );
    const holders = [];
    try {
      await w.waitLog(/watching every network namespace/);
      // a's holder joins the docker-<id>.scope cgroup before it exec's into the namespace, as a container would.
      const inCgroup = {
        wrap: (cmd: string[]) => ["sh", "-c", 'echo $$ > "$0" && exec "$@"', cg.procs, ...a.wrap(cmd)],
      } as unknown as NetNs;
      const ha = await Holder.start({ sockets: [{ proto: "tcp", host: "0.0.0.0", port: 7201 }] }, inCgroup);
      holders.push(ha);
      const hb = await b.holder({ sockets: [{ proto: "tcp", host: "::", port: 7201 }] });
      holders.push(hb);
      const opens = await w.waitFor("two opens of 7201", (e) => e.event === "open" && e.port === 7201, 2);
      const inodeA = Deno.statSync(a.path).ino;
      const inodeB = Deno.statSync(b.path).ino;
      const ea = opens.find((e) => e.netns === inodeA);
      const eb = opens.find((e) => e.netns === inodeB);
      assert.ok(ea && eb, `one open per namespace: ${JSON.stringify(opens)}`);
      assert.deepEqual(ea.pids, [ha.pid]);
      assert.deepEqual(eb.pids, [hb.pid]);
      assert.equal(ea.container_id, id, "namespace a is attributed to the container of its cgroup");
      assert.equal(eb.container_id, null);
      assert.equal(ea.host, "node-7");
      await ha.close();
      await a.delete();
      const [close] = await w.waitFor(
        "the close in namespace a",
        (e) => e.event === "close" && e.netns === inodeA,
      );
      assert.equal(close.port, 7201);
      assert.equal(w.matching((e) => e.netns === inodeB && e.event === "close").length, 0, "b is untouched");
      assert.equal(close.container_id, id);
    } finally {
      for (const h of holders) await h.close();
      await w.stop();
      await a.delete();
      await b.delete();
      await cg.remove();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
