/**
 * A stand-in `tracee` executable for tests (run through the `tracee` shell wrapper next to it). It records the
 * arguments it got, replays Tracee JSON lines to stdout, then exits or stays alive until killed.
 *
 * Environment:
 * - `FAKE_TRACEE_ARGS_FILE`: write the received arguments there (a JSON array), before any output.
 * - `FAKE_TRACEE_FILES`: files whose lines are replayed to stdout, separated by ":".
 * - `FAKE_TRACEE_STDERR`: text written to stderr first.
 * - `FAKE_TRACEE_EXIT_CODE`: exit code after the replay (default 0).
 * - `FAKE_TRACEE_STAY=1`: after the replay, stay alive until killed.
 * - `FAKE_TRACEE_IGNORE_TERM=1`: ignore SIGTERM (only SIGKILL ends it).
 * @module
 */

/** The wrapper directory, to put first on PATH. */
export const FAKE_TRACEE_DIR: string = new URL(".", import.meta.url).pathname;

function writeAll(file: { writeSync(b: Uint8Array): number }, text: string): void {
  const buf = new TextEncoder().encode(text);
  let off = 0;
  while (off < buf.length) off += file.writeSync(buf.subarray(off));
}

if (import.meta.main) {
  const env = (name: string) => Deno.env.get(name) ?? "";
  if (env("FAKE_TRACEE_IGNORE_TERM") === "1") Deno.addSignalListener("SIGTERM", () => {});
  if (env("FAKE_TRACEE_ARGS_FILE")) {
    Deno.writeTextFileSync(env("FAKE_TRACEE_ARGS_FILE"), JSON.stringify(Deno.args));
  }
  if (env("FAKE_TRACEE_STDERR")) writeAll(Deno.stderr, env("FAKE_TRACEE_STDERR"));
  for (const path of env("FAKE_TRACEE_FILES").split(":").filter((p) => p !== "")) {
    for (const line of Deno.readTextFileSync(path).split("\n")) {
      if (line.trim() !== "") writeAll(Deno.stdout, line + "\n");
    }
  }
  if (env("FAKE_TRACEE_STAY") === "1") setInterval(() => {}, 60_000);
  else Deno.exit(Number(env("FAKE_TRACEE_EXIT_CODE") || "0"));
}
