/**
 * Port lists as users write them: "3000,5000-5002 7001" (commas and/or spaces, inclusive ranges).
 * @module
 */
import { ConfigError } from "./config_error.ts";

/** A set of ports, from a list of single ports and inclusive ranges. */
export interface PortSet {
  /** True when `port` is in the set. */
  has(port: number): boolean;
  /** The list in normalised form, e.g. "3000,5000-5002,7001". */
  toString(): string;
  /** How many ports the set holds. */
  readonly size: number;
}

const ACCEPTED =
  'ports 1-65535 and ranges low-high, separated by commas or spaces, e.g. "3000,5000-5002 7001"';

/** Parse a port list; throws a {@link ConfigError} naming `name` and the bad part. */
export function parsePortList(name: string, value: string): PortSet {
  const ranges: [number, number][] = [];
  const parts = value.split(/[\s,]+/).filter((p) => p !== "");
  if (parts.length === 0) throw new ConfigError(name, value, ACCEPTED);
  for (const part of parts) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    const lo = m ? Number(m[1]) : NaN;
    const hi = m ? Number(m[2] ?? m[1]) : NaN;
    if (!m || lo < 1 || hi > 65535 || lo > 65535) {
      throw new ConfigError(name, value, `${ACCEPTED}; "${part}" is not a port 1-65535 or a range of them`);
    }
    if (lo > hi) {
      throw new ConfigError(
        name,
        value,
        `${ACCEPTED}; the range "${part}" runs backwards (write ${hi}-${lo})`,
      );
    }
    ranges.push([lo, hi]);
  }
  ranges.sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [];
  for (const r of ranges) {
    const last = merged.at(-1);
    if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else merged.push([r[0], r[1]]);
  }
  const bits = new Uint8Array(65536);
  let size = 0;
  for (const [lo, hi] of merged) {
    bits.fill(1, lo, hi + 1);
    size += hi - lo + 1;
  }
  const text = merged.map(([lo, hi]) => (lo === hi ? `${lo}` : `${lo}-${hi}`)).join(",");
  return { has: (port) => bits[port] === 1, toString: () => text, size };
}
