/**
 * How a task in deno.json runs its program, for benchmarks that start the program directly (so that the
 * process measured is the program's own, not a task runner's) but must run it as users do.
 * @module
 */

/** A task's leading `NAME=value` words (its environment) and its `--v8-flags=...` arguments. */
export interface DenoTask {
  env: Record<string, string>;
  v8Flags: string[];
}

/** The environment and V8 flags of task `name` in `denoJson` (none of either when the task has none). */
export async function denoTask(
  name: string,
  denoJson: URL = new URL("../deno.json", import.meta.url),
): Promise<DenoTask> {
  const config = JSON.parse(await Deno.readTextFile(denoJson));
  const words: string[] = (config.tasks?.[name] ?? "").split(/\s+/).filter(Boolean);
  const env: Record<string, string> = {};
  for (const word of words) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(word);
    if (!m) break;
    env[m[1]] = m[2];
  }
  return { env, v8Flags: words.filter((arg) => arg.startsWith("--v8-flags=")) };
}
