import assert from "node:assert/strict";
import { assertNoneLeft, runToExit } from "./testing/exit.ts";

const START = new URL("./start.ts", import.meta.url).pathname;
const CONFIG = new URL("./deno.json", import.meta.url).pathname;

Deno.test("deno task start with LISTENER_PORT in use: one line naming it, exit 1, no watcher left running", async () => {
  const held = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const dir = await Deno.makeTempDir({ prefix: "pwtest-start-" });
  try {
    const port = held.addr.port;
    // --quiet keeps deno's own download lines off stderr, not our errors
    const end = await runToExit(
      [Deno.execPath(), "run", "--quiet", "--config", CONFIG, "--allow-all", START],
      {
        env: { LISTENER_HOST: "127.0.0.1", LISTENER_PORT: String(port), LOG_PATH: `${dir}/events.log` },
      },
    );
    // the engine (bpftrace or the poller) inherits the mark: none may outlive start.ts
    await assertNoneLeft(end.mark);
    assert.equal(end.code, 1, end.stderr);
    assert.equal(
      end.stderr,
      `portwatch: cannot listen on 127.0.0.1:${port} (LISTENER_PORT): address in use; ` +
        "stop what holds it or set LISTENER_PORT\n",
    );
    assert.doesNotMatch(end.stdout, /listening/);
  } finally {
    held.close();
    await Deno.remove(dir, { recursive: true });
  }
});
