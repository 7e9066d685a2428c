/** Tests for how benchmarks read a task of deno.json: they must run the program as users do. */
import assert from "node:assert/strict";
import { denoTask } from "./deno_task.ts";

async function taskOf(listen: string) {
  const dir = await Deno.makeTempDir({ prefix: "portwatch_listen_task_" });
  try {
    const path = `${dir}/deno.json`;
    await Deno.writeTextFile(path, JSON.stringify({ tasks: { listen } }));
    return await denoTask("listen", new URL(`file://${path}`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("denoTask: leading NAME=value words are the environment, --v8-flags are kept", async () => {
  const task = await taskOf(
    "MALLOC_ARENA_MAX=1 FOO=a=b deno run --allow-net --v8-flags=--max-semi-space-size=2 listener/main.ts X=1",
  );
  assert.deepEqual(task.env, { MALLOC_ARENA_MAX: "1", FOO: "a=b" });
  assert.deepEqual(task.v8Flags, ["--v8-flags=--max-semi-space-size=2"]);
});

Deno.test("denoTask: a task without either gives none", async () => {
  assert.deepEqual(await taskOf("deno run listener/main.ts"), { env: {}, v8Flags: [] });
});

Deno.test("denoTask: the project's listen task limits malloc to one arena and sets V8 flags", async () => {
  // One glibc arena keeps the listener's threads from each growing their own (about 20 MB of RSS under load).
  const task = await denoTask("listen");
  assert.equal(task.env.MALLOC_ARENA_MAX, "1");
  assert.equal(task.v8Flags.length, 1);
});
