/**
 * How tracee is run, as far as settings decide it (all optional):
 * - `TRACE_EBPF_EVENTS`: the Tracee events to ask for, comma-separated. Default {@link DEFAULT_TRACEE_EVENTS}
 *   (the seed's minimal set was "bind,close").
 * - `TRACEE_ARGS`: extra arguments for tracee, split like a shell does (quotes and backslashes respected).
 * - `TRACEE_OUTPUT_FLAG`: the words that select JSON output. Default `--output json` (Tracee v0.16+);
 *   `-o format:json` for tracee-ebpf v0.8–v0.15.
 * - `TRACEE_EVENTS_FLAG`: the words that select events. Default `--events` (v0.18+); `--filter event=`
 *   (v0.12–v0.17) or `--trace event=` (v0.8–v0.11): a last word ending in "=" gets the list glued on.
 * @module
 */
import { ConfigError, type EnvSource, firstSet } from "../../infra/env.ts";
import { HANDLED_TRACEE_EVENTS } from "./parse.ts";

/**
 * portwatch's default Tracee events: socket() for the protocol of each fd (and whether it is close-on-exec), the
 * LSM bind and listen hooks for addresses (security_socket_listen reports the bound address, so a listen needs
 * no earlier bind), close and fork/exec/exit for the fd table and the holders. `dup`, `dup2` and `dup3` are
 * understood too but not asked for by default (shells dup2 for every redirection): without them a socket held
 * only through a dup'd fd looks closed when its first fd closes, until a reconciliation scan finds it.
 */
export const DEFAULT_TRACEE_EVENTS: readonly string[] = [
  "socket",
  "security_socket_bind",
  "security_socket_listen",
  "close",
  "sched_process_fork",
  "sched_process_exec",
  "sched_process_exit",
];

/** Default words selecting JSON output (Tracee v0.16 and later). */
export const DEFAULT_TRACEE_OUTPUT_FLAG: readonly string[] = ["--output", "json"];

/** Default words selecting events (Tracee v0.18 and later). */
export const DEFAULT_TRACEE_EVENTS_FLAG: readonly string[] = ["--events"];

/** Split a string into words the way a POSIX shell does: quotes ('…', "…") and backslashes respected. */
export function splitShellWords(name: string, value: string): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let i = 0;
  const bad = (what: string) => new ConfigError(name, value, `shell-like words (${what})`);
  while (i < value.length) {
    const c = value[i];
    if (c === "'") {
      const end = value.indexOf("'", i + 1);
      if (end === -1) throw bad("unterminated single quote");
      word += value.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      i++;
      while (i < value.length && value[i] !== '"') {
        if (value[i] === "\\" && i + 1 < value.length && '"\\$`\n'.includes(value[i + 1])) {
          if (value[i + 1] !== "\n") word += value[i + 1];
          i += 2;
        } else word += value[i++];
      }
      if (i >= value.length) throw bad("unterminated double quote");
      inWord = true;
      i++;
    } else if (c === "\\") {
      if (i + 1 >= value.length) throw bad("trailing backslash");
      if (value[i + 1] !== "\n") {
        word += value[i + 1];
        inWord = true;
      }
      i += 2;
    } else if (c === " " || c === "\t" || c === "\n" || c === "\r") {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
      i++;
    } else {
      word += c;
      inWord = true;
      i++;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/** A comma-separated list of Tracee event names (or Tracee event filters such as `close.data.fd=3`). */
export function parseTraceeEvents(name: string, value: string): string[] {
  const list = value.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (list.length === 0 || !list.every((s) => /^[A-Za-z0-9_][A-Za-z0-9_.=:/*-]*$/.test(s))) {
    throw new ConfigError(
      name,
      value,
      "a comma-separated list of Tracee event names, e.g. security_socket_bind,security_socket_listen,close",
    );
  }
  return list;
}

/** How to run tracee, as far as settings decide it. */
export interface TraceeSettings {
  /** Events to ask for. */
  events: string[];
  /** Extra arguments, placed before portwatch's own. */
  args: string[];
  /** Words selecting JSON output. */
  outputFlag: string[];
  /** Words selecting events; a last word ending in "=" gets the list glued on. */
  eventsFlag: string[];
}

/** Read TRACE_EBPF_EVENTS, TRACEE_ARGS, TRACEE_OUTPUT_FLAG and TRACEE_EVENTS_FLAG (ConfigError when bad). */
export function traceeSettingsFromEnv(env: EnvSource): TraceeSettings {
  const ev = firstSet(env, "TRACE_EBPF_EVENTS");
  const args = firstSet(env, "TRACEE_ARGS");
  const out = firstSet(env, "TRACEE_OUTPUT_FLAG");
  const evFlag = firstSet(env, "TRACEE_EVENTS_FLAG");
  const outputFlag = out ? splitShellWords(out.name, out.value) : [...DEFAULT_TRACEE_OUTPUT_FLAG];
  if (out && !outputFlag.some((w) => /json/.test(w))) {
    throw new ConfigError(out.name, out.value, "flags selecting Tracee's JSON output, e.g. --output json");
  }
  const eventsFlag = evFlag ? splitShellWords(evFlag.name, evFlag.value) : [...DEFAULT_TRACEE_EVENTS_FLAG];
  if (eventsFlag.length === 0) {
    throw new ConfigError("TRACEE_EVENTS_FLAG", evFlag?.value ?? "", "e.g. --events or '--trace event='");
  }
  return {
    events: ev ? parseTraceeEvents(ev.name, ev.value) : [...DEFAULT_TRACEE_EVENTS],
    args: args ? splitShellWords(args.name, args.value) : [],
    outputFlag,
    eventsFlag,
  };
}

/** The tracee argument list for settings: extra args, output flag, events flag and list. */
export function traceeArgv(settings: TraceeSettings): string[] {
  const list = settings.events.join(",");
  const flag = [...settings.eventsFlag];
  const last = flag.at(-1);
  const eventWords = last?.endsWith("=") ? [...flag.slice(0, -1), last + list] : [...flag, list];
  return [...settings.args, ...settings.outputFlag, ...eventWords];
}

/** Events in a list that {@link parseTraceeLine} does not turn into socket events (they will be skipped). */
export function unhandledEvents(events: readonly string[]): string[] {
  return events.filter((e) => !HANDLED_TRACEE_EVENTS.includes(e.split(".")[0]));
}
