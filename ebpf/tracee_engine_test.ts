import assert from "node:assert/strict";
import { WatcherProc } from "../watcher/testing/watcher_proc.ts";
import { NetNs, netnsSkipReason } from "../testing/netns.ts";
import { FAKE_TRACEE_DIR } from "./tracee/testing/fake_tracee.ts";
import { TRACEE_FIXTURES } from "./tracee/testing/fixtures.ts";

const EBPF_MAIN = new URL("./main.ts", import.meta.url).pathname;
const FIXTURES = TRACEE_FIXTURES;

Deno.test("deno task ebpf with Tracee (a stand-in replaying Tracee's JSON): opens and closes with container", async () => {
  const dir = await Deno.makeTempDir({ prefix: "portwatch-tracee-test-" });
  // In a namespace of its own where one can be made, so the start-up scan finds nothing (a live stack on this
  // host may well listen on 8080, one of the fixture's ports); Tracee's events carry no namespace.
  const ns = netnsSkipReason() === undefined ? await NetNs.create() : undefined;
  try {
    const w = WatcherProc.start(
      {
        EBPF_ENGINE: "tracee",
        EBPF_ONLY: "1",
        PATH: `${FAKE_TRACEE_DIR}:${Deno.env.get("PATH")}`,
        FAKE_TRACEE_DENO: Deno.execPath(),
        FAKE_TRACEE_FILES: [
          `${FIXTURES}socket_bind_listen_close.v0.24.constructed.jsonl`,
          `${FIXTURES}security_socket_listen.v0.24.constructed.jsonl`,
        ].join(":"),
        FAKE_TRACEE_ARGS_FILE: `${dir}/args.json`,
        FAKE_TRACEE_STAY: "1",
        TRACEE_ARGS: "--scope container",
        SNAPSHOT_PATH: `${dir}/snapshot`,
        HOST_NAME: "tracee-host",
        // Only the fixture's port: the start-up scan of this machine's own ports is not what is tested.
        WATCH_PORTS: "80,8080",
        EBPF_RECONCILE: "3600",
      },
      ns,
      [],
      EBPF_MAIN,
    );
    try {
      await w.waitLog(/watching this network namespace with tracee events/, 30_000);
      const events = (await w.waitFor("open and close of 8080", (e) => e.port === 8080, 2)).slice(0, 2);
      assert.deepEqual(events.map((e) => [e.event, e.proto, e.source]), [["open", "tcp", "ebpf"], [
        "close",
        "tcp",
        "ebpf",
      ]]);
      // The container comes from Tracee's event (nginx in container "web" on port 80), not from the watcher.
      const [web] = await w.waitFor("open of 80", (e) => e.port === 80 && e.event === "open");
      assert.equal(web.container_name, "web");
      assert.match(web.container_id ?? "", /^3f8a1c2b9d4e/);
      assert.equal(events[0].container_id, null, "a host socket has no container");
      const args = JSON.parse(await Deno.readTextFile(`${dir}/args.json`));
      assert.deepEqual(args.slice(0, 2), ["--scope", "container"], "TRACEE_ARGS passed first");
      assert.ok(args.includes("--output") && args.includes("json"), JSON.stringify(args));
    } finally {
      await w.stop("SIGTERM");
    }
  } finally {
    await ns?.delete();
    await Deno.remove(dir, { recursive: true });
  }
});
