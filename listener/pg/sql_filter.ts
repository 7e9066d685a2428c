/**
 * EventFilter as SQL conditions over the typed columns of `events` and `port_state`, with the same meaning as
 * filter.ts's matches(): ports as ranges, a container by id, id prefix (6+ characters) or name (with or
 * without the leading slash), since inclusive, until exclusive.
 * @module
 */
import type { Fragment, Sql } from "postgres";
import type { EventFilter } from "../filter.ts";

/** The ranges of a port set, from its normalised text ("3000,5000-5002"). */
export function portRanges(ports: { toString(): string }): [number, number][] {
  return ports.toString().split(",").filter((p) => p !== "").map((p) => {
    const [lo, hi] = p.split("-").map(Number);
    return [lo, hi ?? lo];
  });
}

/** Join fragments with AND; `TRUE` when there are none. */
function and(sql: Sql, parts: Fragment[]): Fragment {
  if (parts.length === 0) return sql`TRUE`;
  return parts.reduce((acc, p) => sql`${acc} AND ${p}`);
}

function or(sql: Sql, parts: Fragment[]): Fragment {
  return parts.reduce((acc, p) => sql`${acc} OR ${p}`);
}

/** The container condition: id, id prefix, or name. */
function containerCondition(sql: Sql, wanted: string): Fragment {
  const parts = [sql`container_id = ${wanted}`];
  if (wanted.length >= 6) {
    // A range on the "C"-collated column (an index range scan), then the exact prefix test.
    parts.push(
      sql`(container_id >= ${wanted} AND container_id < ${
        wanted + "\u{10FFFF}"
      } AND starts_with(container_id, ${wanted}))`,
    );
  }
  parts.push(sql`container_name IN (${wanted}, ${"/" + wanted})`);
  return sql`(${or(sql, parts)})`;
}

function portCondition(sql: Sql, ports: { toString(): string }): Fragment {
  const ranges = portRanges(ports);
  return sql`(${
    or(sql, ranges.map(([lo, hi]) => lo === hi ? sql`port = ${lo}` : sql`port BETWEEN ${lo} AND ${hi}`))
  })`;
}

/** WHERE conditions over `events` for `f`. */
export function eventsWhere(sql: Sql, f: EventFilter): Fragment {
  const parts: Fragment[] = [];
  if (f.ports) parts.push(portCondition(sql, f.ports));
  if (f.proto) parts.push(sql`proto = ${f.proto}`);
  if (f.event) parts.push(sql`event = ${f.event}`);
  if (f.sources) parts.push(sql`source IN ${sql([...f.sources])}`);
  if (f.container) parts.push(containerCondition(sql, f.container));
  if (f.host) parts.push(sql`host = ${f.host}`);
  if (f.since) parts.push(sql`ts >= ${f.since}::timestamptz`);
  if (f.until) parts.push(sql`ts < ${f.until}::timestamptz`);
  return and(sql, parts);
}

/**
 * WHERE conditions over open rows of `port_state` for `f` (port, proto, container, host; the time bounds,
 * which apply to when a port opened, are checked on the results).
 */
export function portsWhere(sql: Sql, f: EventFilter): Fragment {
  const parts: Fragment[] = [sql`open`];
  if (f.ports) parts.push(portCondition(sql, f.ports));
  if (f.proto) parts.push(sql`proto = ${f.proto}`);
  if (f.container) parts.push(containerCondition(sql, f.container));
  if (f.host) parts.push(sql`host = ${f.host}`);
  return and(sql, parts);
}
