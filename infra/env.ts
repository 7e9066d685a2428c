/**
 * Parsers for settings given as environment variables or flags. Each one returns the parsed value or throws a
 * {@link ConfigError} that names the variable, the value and what is accepted; none guesses.
 * @module
 */
import { parseArgs } from "node:util";
import { ConfigError } from "./config_error.ts";

export { ConfigError };

/** Where settings are read from: `Deno.env` or any plain record (tests). */
export type EnvSource = { get(name: string): string | undefined };

/** A record as an {@link EnvSource}. */
export function envOf(record: Record<string, string | undefined>): EnvSource {
  return { get: (name) => record[name] };
}

/** The first of `names` that is set (non-empty), with its name; for aliases such as WATCH_PORTS/DESIRED_PORTS. */
export function firstSet(env: EnvSource, ...names: string[]): { name: string; value: string } | undefined {
  for (const name of names) {
    const value = env.get(name);
    if (value !== undefined && value.trim() !== "") return { name, value: value.trim() };
  }
  return undefined;
}

/** A setting found in a flag (`--flag`) or, failing that, in one of its environment variables. */
export type Setting = { name: string; value: string } | undefined;

/**
 * Parse `args` against `options` (strict, no positionals; `-h`/`--help` added). Returns "help" when asked for,
 * else the values and `pick(flag, ...envNames)`: the flag when given, else the first set variable. Unknown or
 * malformed flags throw a ConfigError that shows `usage`.
 */
export function parseFlags(
  args: string[],
  options: Record<string, { type: "string" | "boolean" }>,
  env: EnvSource,
  usage: string,
):
  | "help"
  | {
    values: Record<string, string | boolean | undefined>;
    pick(flag: string, ...names: string[]): Setting;
  } {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args,
      options: { ...options, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    throw new ConfigError(
      "arguments",
      args.join(" "),
      `the options below\n\n${usage}\n(${(e as Error).message})`,
    );
  }
  if (values.help) return "help";
  const pick = (flag: string, ...names: string[]): Setting => {
    const v = values[flag];
    if (typeof v === "string") return { name: `--${flag}`, value: v };
    return firstSet(env, ...names);
  };
  return { values, pick };
}

/** A whole number in [min, max]. */
export function parseInteger(name: string, value: string, min: number, max: number): number {
  const v = value.trim();
  if (!/^-?\d+$/.test(v) || Number(v) < min || Number(v) > max) {
    throw new ConfigError(name, value, `a whole number from ${min} to ${max}`);
  }
  return Number(v);
}

/** A TCP/UDP port number, 1-65535 (0 too when `allowZero`, meaning "any free port"). */
export function parsePort(name: string, value: string, allowZero = false): number {
  return parseInteger(name, value, allowZero ? 0 : 1, 65535);
}

/** A number of seconds > 0 (fractions allowed), e.g. "1", "0.25"; returned in milliseconds. */
export function parseSecondsMs(name: string, value: string, { allowZero = false } = {}): number {
  const v = value.trim();
  const n = Number(v);
  if (!/^\d*\.?\d+$/.test(v) || !Number.isFinite(n) || (allowZero ? n < 0 : n <= 0) || n > 86_400) {
    throw new ConfigError(
      name,
      value,
      `a number of seconds ${
        allowZero ? ">= 0" : "> 0"
      } and at most 86400, fractions allowed (e.g. 1 or 0.25)`,
    );
  }
  return n * 1000;
}

const TRUE = new Set(["1", "true", "yes", "on"]);
const FALSE = new Set(["0", "false", "no", "off"]);

/** A boolean: 1/true/yes/on or 0/false/no/off (any case). */
export function parseBool(name: string, value: string): boolean {
  const v = value.trim().toLowerCase();
  if (TRUE.has(v)) return true;
  if (FALSE.has(v)) return false;
  throw new ConfigError(name, value, "1, true, yes, on, or 0, false, no, off");
}

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
};

/** A size in bytes: a whole number, optionally with a unit (K, KiB, KB, M, MiB, MB, G, GiB, GB). */
export function parseBytes(name: string, value: string, min = 0): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(value.trim());
  const unit = m ? SIZE_UNITS[m[2].toLowerCase()] : undefined;
  const n = m && unit !== undefined ? Math.floor(Number(m[1]) * unit) : NaN;
  if (!Number.isSafeInteger(n) || n < min) {
    throw new ConfigError(
      name,
      value,
      `a size in bytes${
        min > 0 ? ` of at least ${min}` : ""
      }, optionally with a unit: 1048576, 512K, 1MiB, 64MB, 1G`,
    );
  }
  return n;
}

/** An http(s) URL. */
export function parseUrl(name: string, value: string): URL {
  try {
    const url = new URL(value.trim());
    if (url.protocol === "http:" || url.protocol === "https:") return url;
  } catch {
    // fall through to the error below
  }
  throw new ConfigError(name, value, "an http:// or https:// URL, e.g. http://127.0.0.1:8080/ingest");
}
