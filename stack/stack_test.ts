import assert from "node:assert/strict";
import { join } from "node:path";
import { inside, stop, up, type UpOptions } from "./stack.ts";
import { readState } from "./state.ts";
import { alive, sh, waitUntil } from "./sys.ts";
import { eventsFor } from "./verify.ts";
import { freePort } from "../testing/port.ts";
import { elapse } from "../infra/wait.ts";
import { netnsSkipReason, skipIf } from "../testing/netns.ts";
import { cgroupSkipReason } from "../pipeline/scope/testing/cgroup.ts";

const TESTERS = new URL("../testers/", import.meta.url).pathname;
const denoRun = [Deno.execPath(), "run", "--allow-all"];

function hasSupervisord(): boolean {
  try {
    return new Deno.Command("supervisord", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync()
      .success;
  } catch {
    return false;
  }
}

function skipReason(supervised = false): string | undefined {
  return netnsSkipReason() ?? cgroupSkipReason() ??
    (supervised && !hasSupervisord()
      ? "supervisord is not installed (Debian: apt-get install supervisor)"
      : undefined);
}

/** A stack of our own (prefix, port and state dir unique to the test), always torn down. */
async function withStack(supervise: boolean, fn: (o: UpOptions) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "portwatch-stack-test-" });
  const o: UpOptions = {
    dir,
    prefix: `pt${crypto.randomUUID().slice(0, 4)}`,
    port: freePort(),
    mode: "hf",
    supervise,
    watcherEnv: { SCAN_INTERVAL: "0.2", BURST_SCANS: "1" },
    logPath: join(dir, "portwatcher.log"),
  };
  let state: ReturnType<typeof readState>;
  try {
    state = await up(o);
    await fn(o);
  } finally {
    state ??= readState(dir);
    await stop(dir);
    // Nothing is left: no namespace, no cgroup, no process.
    if (state) {
      const netns = (await sh(["ip", "netns", "list"])).stdout;
      for (const c of Object.values(state.containers)) {
        assert.ok(!netns.includes(c.ns), `namespace ${c.ns} removed`);
        assert.throws(() => Deno.statSync(c.cgroup), Deno.errors.NotFound);
        assert.ok(!alive(c.watcherPid), `watcher ${c.watcherPid} gone`);
      }
      assert.ok(!alive(state.listener.pid), "listener gone");
    }
    await Deno.remove(dir, { recursive: true });
  }
}

const url = (o: UpOptions) => `http://127.0.0.1:${o.port}`;
async function waitEvents(
  o: UpOptions,
  port: number,
  pred: (e: { event: string; source: string }[]) => boolean,
) {
  let last: unknown[] = [];
  await waitUntil(`events for ${port}`, async () => {
    const events = await eventsFor(url(o), port, "2000-01-01T00:00:00Z");
    last = events;
    return pred(events);
  }, 20_000).catch((e) => {
    throw new Error(`${e.message}; got ${JSON.stringify(last)}`);
  });
  return await eventsFor(url(o), port, "2000-01-01T00:00:00Z");
}

Deno.test({
  name: "live stack (no Docker): steady, transient, burst, kill-port, stop; each event in its container",
  ignore: skipIf(skipReason(), "live stack"),
  async fn() {
    await withStack(false, async (o) => {
      const state = readState(o.dir)!;
      // steady TCP in nodejs-tester and UDP in python-tester
      await inside(o.dir, "nodejs-tester", [...denoRun, `${TESTERS}hold.ts`, "tcp", "3901"], true);
      await inside(o.dir, "python-tester", [...denoRun, `${TESTERS}hold.ts`, "udp", "3902"], true);
      const [tcp] = await waitEvents(o, 3901, (es) => es.length >= 1);
      const [udp] = await waitEvents(o, 3902, (es) => es.length >= 1);
      assert.deepEqual([tcp.event, tcp.proto, tcp.container_name, tcp.container_id, tcp.source], [
        "open",
        "tcp",
        "nodejs-tester",
        state.containers["nodejs-tester"].containerId,
        "polling",
      ]);
      assert.deepEqual([udp.event, udp.proto, udp.container_name, udp.container_id], [
        "open",
        "udp",
        "python-tester",
        state.containers["python-tester"].containerId,
      ]);
      // transient: held 1 s
      await inside(o.dir, "nodejs-tester", [
        ...denoRun,
        `${TESTERS}transient.ts`,
        "tcp",
        "3903",
        "--ms",
        "1000",
      ], false);
      const t = await waitEvents(o, 3903, (es) => es.length >= 2);
      assert.deepEqual(t.map((e) => e.event), ["open", "close"]);
      // burst tcp 6
      await inside(o.dir, "python-tester", [
        ...denoRun,
        `${TESTERS}burst.ts`,
        "tcp",
        "6",
        "--base",
        "3910",
        "--hold-ms",
        "1000",
        "--interval",
        "0.05",
      ], false);
      for (let p = 3910; p < 3916; p++) {
        const b = await waitEvents(o, p, (es) => es.length >= 2);
        assert.deepEqual(b.map((e) => `${e.event} ${e.container_name}`), [
          "open python-tester",
          "close python-tester",
        ]);
      }
      // kill-port: the steady TCP holder in nodejs-tester
      assert.equal(
        await inside(o.dir, "nodejs-tester", [...denoRun, `${TESTERS}kill_port.ts`, "3901"], false),
        0,
      );
      const k = await waitEvents(o, 3901, (es) => es.length >= 2);
      assert.deepEqual(k.map((e) => `${e.event} ${e.source}`), ["open polling", "close polling"]);
      // stop: the UDP port still open gets its shutdown close from the watcher before it exits
      await stop(o.dir);
      const lines = (await Deno.readTextFile(o.logPath)).split("\n").filter((l) => l).map((l) =>
        JSON.parse(l)
      );
      const udpEvents = lines.filter((l) => l.port === 3902).map((l) => `${l.event} ${l.source}`);
      assert.deepEqual(udpEvents, ["open polling", "close shutdown"]);
    });
  },
});

Deno.test({
  name: "live stack under supervisord: a killed watcher is restarted; nothing lost, nothing sent twice",
  ignore: skipIf(skipReason(true), "live stack supervised"),
  async fn() {
    await withStack(true, async (o) => {
      const state = readState(o.dir)!;
      await inside(o.dir, "nodejs-tester", [...denoRun, `${TESTERS}hold.ts`, "tcp", "3921"], true);
      await waitEvents(o, 3921, (es) => es.length >= 1);
      const watcher = state.containers["nodejs-tester"].watcherPid;
      assert.ok(watcher > 0 && alive(watcher), `watcher pid ${watcher}`);
      Deno.kill(watcher, "SIGKILL");
      // While it is down: a port opens.
      await inside(o.dir, "nodejs-tester", [...denoRun, `${TESTERS}hold.ts`, "tcp", "3922"], true);
      const [opened] = await waitEvents(o, 3922, (es) => es.length >= 1);
      assert.equal(opened.container_name, "nodejs-tester");
      await elapse(1000, "several scans of the restarted watcher, in which 3921 may not open again");
      const steady = await eventsFor(url(o), 3921, "2000-01-01T00:00:00Z");
      assert.deepEqual(
        steady.map((e) => e.event),
        ["open"],
        "3921 stayed open: no second open after the restart",
      );
      const log = await Deno.readTextFile(join(o.dir, "logs", "nodejs-tester.log"));
      assert.ok(
        (log.match(/watching this network namespace/g) ?? []).length >= 2,
        "the watcher started twice",
      );
    });
  },
});
