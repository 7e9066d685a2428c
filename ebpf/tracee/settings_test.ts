import assert from "node:assert/strict";
import { ConfigError, envOf } from "../../infra/env.ts";
import {
  DEFAULT_TRACEE_EVENTS,
  splitShellWords,
  traceeArgv,
  traceeSettingsFromEnv,
  unhandledEvents,
} from "./settings.ts";

Deno.test("splitShellWords: quotes and backslashes like a shell", () => {
  assert.deepEqual(splitShellWords("X", ""), []);
  assert.deepEqual(splitShellWords("X", "  --scope  comm=nginx \t"), ["--scope", "comm=nginx"]);
  assert.deepEqual(splitShellWords("X", `--output 'option:parse-arguments' "a b" c\\ d ''`), [
    "--output",
    "option:parse-arguments",
    "a b",
    "c d",
    "",
  ]);
  assert.deepEqual(splitShellWords("X", `"say \\"hi\\" \\n" 'it''s'`), [`say "hi" \\n`, "its"]);
  assert.deepEqual(splitShellWords("X", `a"b c"'d'`), ["ab cd"]);
  for (const bad of [`"open`, `'open`, `trailing\\`]) {
    assert.throws(
      () => splitShellWords("TRACEE_ARGS", bad),
      (e) => e instanceof ConfigError && /TRACEE_ARGS/.test(e.message),
    );
  }
});

Deno.test("traceeSettingsFromEnv: defaults, overrides and errors", () => {
  const d = traceeSettingsFromEnv(envOf({}));
  assert.deepEqual(d, {
    events: [...DEFAULT_TRACEE_EVENTS],
    args: [],
    outputFlag: ["--output", "json"],
    eventsFlag: ["--events"],
  });
  assert.deepEqual(unhandledEvents(d.events), []);
  assert.deepEqual(traceeArgv(d), [
    "--output",
    "json",
    "--events",
    "socket,security_socket_bind,security_socket_listen,close,sched_process_fork,sched_process_exec,sched_process_exit",
  ]);
  const old = traceeSettingsFromEnv(envOf({
    TRACE_EBPF_EVENTS: " bind, close ",
    TRACEE_ARGS: `--trace comm=nginx --output "option:parse-arguments"`,
    TRACEE_OUTPUT_FLAG: "-o format:json",
    TRACEE_EVENTS_FLAG: "--trace event=",
  }));
  assert.deepEqual(traceeArgv(old), [
    "--trace",
    "comm=nginx",
    "--output",
    "option:parse-arguments",
    "-o",
    "format:json",
    "--trace",
    "event=bind,close",
  ]);
  assert.deepEqual(unhandledEvents(["bind", "close.data.fd=3", "openat"]), ["openat"]);
  assert.throws(() => traceeSettingsFromEnv(envOf({ TRACE_EBPF_EVENTS: ",," })), ConfigError);
  assert.throws(() => traceeSettingsFromEnv(envOf({ TRACE_EBPF_EVENTS: "bind close" })), ConfigError);
  assert.throws(() => traceeSettingsFromEnv(envOf({ TRACEE_OUTPUT_FLAG: "--output table" })), /JSON output/);
  assert.throws(() => traceeSettingsFromEnv(envOf({ TRACEE_ARGS: "'x" })), /TRACEE_ARGS/);
});

// ---------------------------------------------------------------------------------------------------------------
// Files
