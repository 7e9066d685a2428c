import assert from "node:assert/strict";
import { assertNoneLeft, runToExit } from "../testing/exit.ts";

const MAIN = new URL("./main.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

/** `deno task listen`, as a subprocess: --quiet keeps deno's own download lines off stderr, not our errors. */
const listen = (
  args: string[] = [],
) => [Deno.execPath(), "run", "--quiet", "--config", CONFIG, "-A", MAIN, ...args];

/** Hold a free loopback port for `fn`, with a temporary directory for the log. */
async function withHeldPort(fn: (port: number, dir: string) => Promise<void>): Promise<void> {
  const held = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const dir = await Deno.makeTempDir({ prefix: "pwtest-listen-" });
  try {
    await fn(held.addr.port, dir);
  } finally {
    held.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("deno task listen with LISTENER_PORT in use: one line naming it, exit 1, nothing left running", async () => {
  await withHeldPort(async (port, dir) => {
    const end = await runToExit(listen(), {
      env: { LISTENER_HOST: "127.0.0.1", LISTENER_PORT: String(port), LOG_PATH: `${dir}/events.log` },
    });
    await assertNoneLeft(end.mark);
    assert.equal(end.code, 1, end.stderr);
    assert.equal(
      end.stderr,
      `portwatch listener: cannot listen on 127.0.0.1:${port} (LISTENER_PORT): address in use; ` +
        "stop what holds it or set LISTENER_PORT\n",
    );
    assert.equal(end.stdout, "", "no listening line");
  });
});

Deno.test("deno task listen --port in use: the message names the flag that was given", async () => {
  await withHeldPort(async (port, dir) => {
    const end = await runToExit(
      listen(["--host", "127.0.0.1", `--port=${port}`, "--log-path", `${dir}/e.log`]),
      {
        env: { LISTENER_PORT: "1" }, // the flag wins, and is what the message names
      },
    );
    await assertNoneLeft(end.mark);
    assert.equal(end.code, 1, end.stderr);
    assert.equal(
      end.stderr,
      `portwatch listener: cannot listen on 127.0.0.1:${port} (--port): address in use; stop what holds it or set --port\n`,
    );
  });
});
