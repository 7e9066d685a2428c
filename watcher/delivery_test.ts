import assert from "node:assert/strict";
import { startListener } from "../testing/listener.ts";
import { waitUntil } from "../infra/wait.ts";
import { NetNs, netnsSkipReason, skipIf } from "../testing/netns.ts";
import { WatcherProc } from "./testing/watcher_proc.ts";

const skip = netnsSkipReason();

function logged(path: string): Record<string, unknown>[] {
  try {
    return Deno.readTextFileSync(path).split("\n").filter((l) => l).map((l) => JSON.parse(l));
  } catch {
    return [];
  }
}

/** Wait (15 s) until `n` lines of the listener's log match `pred`; the log is shown on timeout. */
function waitLogged(path: string, what: string, pred: (r: Record<string, unknown>) => boolean, n: number) {
  return waitUntil(
    () => `${what}; log: ${JSON.stringify(logged(path))}`,
    () => logged(path).filter(pred).length >= n,
    15_000,
    25,
  );
}

Deno.test({
  name: "delivery: shutdown closes reach a real listener; listener down then up: the spool drains, once each",
  ignore: skipIf(skip, "watcher delivery"),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "portwatch-delivery-test-" });
    const ns = await NetNs.create();
    const log = `${dir}/portwatcher.log`;
    const env = {
      SCAN_INTERVAL: "0.1",
      SNAPSHOT_PATH: `${dir}/snapshot`,
      SPOOL_PATH: `${dir}/spool`,
      LISTENER_URL: "http://127.0.0.1:18321",
      HOST_NAME: "test-host",
      CONTAINER_ID: "0123456789ab",
      CONTAINER_NAME: "api",
    };
    let watcher: WatcherProc | undefined;
    let listener: { stop(): Promise<void> } | undefined;
    const holders = [];
    try {
      // The listener is not up yet: the watcher spools.
      watcher = WatcherProc.start(env, ns);
      holders.push(await ns.holder({ sockets: [{ proto: "tcp", host: "0.0.0.0", port: 7101 }] }));
      holders.push(await ns.holder({ sockets: [{ proto: "udp", host: "::", port: 7102 }] }));
      await watcher.waitLog(/New port opened: 7102/);
      await holders[1].close();
      await watcher.waitLog(/Port closed: 7102/);
      assert.deepEqual(logged(log), []);

      listener = await startListener(log, {
        port: 18321,
        wrap: (cmd) => ns.wrap(cmd),
        env: { LISTENER_FSYNC: "1", LOG_LEVEL: "warning" },
        stderr: "null",
      });
      await waitLogged(log, "the spooled events", (r) => r.port === 7101 || r.port === 7102, 3);

      // Shutdown: a close with source "shutdown" for 7101, delivered before the watcher exits.
      const status = await watcher.stop("SIGTERM");
      assert.equal(status.code, 0);
      const lines = logged(log).filter((r) => r.port === 7101 || r.port === 7102);
      assert.deepEqual(lines.map((r) => `${r.event} ${r.port} ${r.source}`), [
        "open 7101 polling",
        "open 7102 polling",
        "close 7102 polling",
        "close 7101 shutdown",
      ]);
      assert.equal(new Set(lines.map((r) => r.id)).size, lines.length, "each event stored once");
      for (const r of lines) {
        assert.equal(r.container_id, "0123456789ab");
        assert.equal(r.container_name, "api");
        assert.equal(typeof r.ts, "string");
      }
    } finally {
      for (const h of holders) await h.close();
      await watcher?.stop().catch(() => {});
      await listener?.stop();
      await ns.delete();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
