/**
 * Argument parsing shared by the tester programs (hold, http, transient, burst, kill_port): node:util
 * parseArgs in strict mode, value parsers that throw a {@link UsageError} naming the argument, the value and
 * what is accepted ("PORT=abc: expected a port 1-65535"), and {@link runMain}, which turns a UsageError into
 * exit code 2 and a {@link TesterError} (a runtime failure: port in use, no permission, nothing to kill) into
 * exit code 1, each with one clear line on stderr.
 * @module
 */
import { isIP } from "node:net";
import { parseArgs } from "node:util";
import { ConfigError } from "../infra/env.ts";

/** Exit code of a usage error (bad argument, unknown option). */
export const EXIT_USAGE = 2;
/** Exit code of a runtime failure (port in use, no permission, nothing holds the port). */
export const EXIT_FAILURE = 1;

/**
 * A bad argument: `NAME=VALUE: expected ACCEPTED`. A {@link ConfigError} (same fields), with the testers'
 * shorter message.
 */
export class UsageError extends ConfigError {
  /**
   * @param setting the argument, e.g. `PORT` or `--seconds`
   * @param value the value given
   * @param accepted what would have been accepted, e.g. "a port 1-65535"
   * @param message the message, when not `NAME=VALUE: expected ACCEPTED` (a missing or unknown argument)
   */
  constructor(setting: string, value: string, accepted: string, message?: string) {
    super(setting, value, accepted);
    this.name = "UsageError";
    this.message = message ?? `${setting}=${value}: expected ${accepted}`;
  }
}

/** A runtime failure with a message meant for the user as is (exit code 1). */
export class TesterError extends Error {
  /** @param message the whole line printed on stderr (after the program's name) */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TesterError";
  }
}

/** Transport protocols the testers open. */
export type Proto = "tcp" | "udp";

/** `tcp` or `udp` (any case). */
export function parseProto(name: string, value: string): Proto {
  const v = value.trim().toLowerCase();
  if (v === "tcp" || v === "udp") return v;
  throw new UsageError(name, value, "tcp or udp");
}

/** A port, 1-65535, or 0-65535 with `allowZero` (0: any free port). */
export function parsePort(name: string, value: string, allowZero = false): number {
  const v = value.trim();
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < (allowZero ? 0 : 1) || n > 65535) {
    throw new UsageError(name, value, allowZero ? "a port 0-65535 (0: any free port)" : "a port 1-65535");
  }
  return n;
}

/** A whole number in [min, max]. */
export function parseCount(name: string, value: string, min: number, max: number): number {
  const v = value.trim();
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max) {
    throw new UsageError(name, value, `a whole number ${min}-${max}`);
  }
  return n;
}

/** A number of seconds >= 0 (fractions allowed, at most a day); returned in milliseconds. */
export function parseSecondsMs(name: string, value: string, { allowZero = true } = {}): number {
  const v = value.trim();
  const n = Number(v);
  if (!/^(\d+\.?\d*|\.\d+)$/.test(v) || n > 86_400 || (!allowZero && n === 0)) {
    throw new UsageError(
      name,
      value,
      `a number of seconds ${
        allowZero ? ">= 0" : "> 0"
      } and at most 86400, fractions allowed (e.g. 2 or 0.1)`,
    );
  }
  return Math.round(n * 1000);
}

/** A whole number of milliseconds, 0 to a day. */
export function parseMs(name: string, value: string): number {
  const v = value.trim();
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 86_400_000) {
    throw new UsageError(name, value, "a whole number of milliseconds 0-86400000 (e.g. 200)");
  }
  return n;
}

/** An IPv4 or IPv6 address literal to bind (0.0.0.0, ::, 127.0.0.1, ::1, ...); no names, no brackets. */
export function parseHost(name: string, value: string): string {
  const v = value.trim();
  if (isIP(v) === 0) {
    throw new UsageError(
      name,
      value,
      "an IP address to bind: 0.0.0.0, ::, 127.0.0.1, ::1 or another literal",
    );
  }
  return v;
}

/** `TERM`/`SIGTERM` or `KILL`/`SIGKILL` (any case), as Deno's signal name. */
export function parseSignal(name: string, value: string): "SIGTERM" | "SIGKILL" {
  const v = value.trim().toUpperCase().replace(/^SIG/, "");
  if (v === "TERM" || v === "KILL") return `SIG${v}`;
  throw new UsageError(name, value, "TERM or KILL");
}

/** Options of {@link parseCli}: the options (string- or boolean-valued) and the positional names. */
export interface CliSpec {
  options: Record<string, { type: "string" | "boolean" }>;
  /** Names of the positionals, in order, for messages, e.g. ["PROTO", "PORT"]. */
  positionals: string[];
  /** How many of them may be left out at the end (default 0). */
  optionalPositionals?: number;
}

/** What {@link parseCli} returns: the option values and the positionals. */
export interface Cli {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

/**
 * Parse `args` strictly: unknown options, missing option values and a wrong number of positionals are
 * {@link UsageError}s; `-h`/`--help` returns "help".
 */
export function parseCli(args: string[], spec: CliSpec): Cli | "help" {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { ...spec.options, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: true,
    });
  } catch (e) {
    // node's messages: "Unknown option '--x'. To specify a positional...", "Option '--seconds <value>'
    // argument missing": the first sentence says it
    const first = (e as Error).message.split(/\.\s/)[0];
    throw new UsageError("arguments", args.join(" "), "known options", first);
  }
  if (parsed.values.help) return "help";
  const { positionals } = parsed;
  const max = spec.positionals.length;
  const min = max - (spec.optionalPositionals ?? 0);
  if (positionals.length < min) {
    const missing = spec.positionals.slice(positionals.length, min);
    throw new UsageError(
      missing[0],
      "",
      "a value",
      `missing argument${missing.length > 1 ? "s" : ""} ${missing.join(" ")}`,
    );
  }
  if (positionals.length > max) {
    const extra = positionals.slice(max).join(" ");
    throw new UsageError(
      "arguments",
      extra,
      `only ${spec.positionals.join(" ")}`,
      `unexpected argument(s) ${JSON.stringify(extra)}: takes ${spec.positionals.join(" ")} and options`,
    );
  }
  return { values: { ...parsed.values }, positionals };
}

/** The string value of option `name`, when given. */
export function stringOpt(cli: Cli, name: string): string | undefined {
  const v = cli.values[name];
  return typeof v === "string" ? v : undefined;
}

/**
 * Run a tester's main: prints `usage` for "help" results, a UsageError as `PROGRAM: MESSAGE` plus the usage
 * (exit 2), a TesterError as `PROGRAM: MESSAGE` (exit 1); any other error is printed with its stack (exit 1).
 * Exits the process with the code.
 */
export async function runMain(program: string, usage: string, main: () => Promise<number | "help">) {
  let code: number;
  try {
    const r = await main();
    if (r === "help") {
      console.log(usage);
      code = 0;
    } else {
      code = r;
    }
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`${program}: ${e.message}\nusage: ${usage.split("\n")[0]}`);
      code = EXIT_USAGE;
    } else if (e instanceof TesterError) {
      console.error(`${program}: ${e.message}`);
      code = EXIT_FAILURE;
    } else {
      console.error(`${program}: unexpected failure:`, e);
      code = EXIT_FAILURE;
    }
  }
  Deno.exit(code);
}

/** Print one compact JSON line on stdout (synchronously, so lines are never lost on exit). */
export function emit(value: Record<string, unknown>): void {
  const line = new TextEncoder().encode(JSON.stringify(value) + "\n");
  let off = 0;
  while (off < line.length) off += Deno.stdout.writeSync(line.subarray(off));
}
