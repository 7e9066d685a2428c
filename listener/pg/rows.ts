/**
 * From records to the rows written in one insert transaction: the typed columns of `events`, and one
 * `port_state` update per port (several events about one port in a batch fold into the newest, since a row
 * can be updated once per statement). Both go to PostgreSQL as encoded text columns, one parameter each
 * (string_to_array and unnest).
 * @module
 */
import type { Record_ } from "../validate.ts";
import {
  isPortEvent,
  keepsOpen,
  type OpenPort,
  openPort,
  portKey,
  type PortRecord,
  sinceOf,
} from "../ui/ports_rule.js";

/** Characters a typed copy cannot hold: NUL (PostgreSQL text) and the separators of {@link eventColumns}. */
// deno-lint-ignore no-control-regex
const UNSAFE = /[\u0000\u001e\u001f]/g;

/**
 * PostgreSQL text cannot hold NUL nor lone surrogates, and the column encoding uses two control characters:
 * the typed copies drop them (the line keeps everything).
 */
function text(v: unknown): string | null {
  if (typeof v !== "string") return null;
  let s = v;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0 || c === 0x1e || c === 0x1f) {
      s = s.replace(UNSAFE, "");
      break;
    }
  }
  if (!s.isWellFormed()) s = s.toWellFormed();
  return s;
}

/** Separator of values in an encoded column (ASCII record separator). */
export const SEP = "\u001e";
/** An SQL NULL in an encoded column (ASCII unit separator). */
export const NULL = "\u001f";

/**
 * The rows as ten encoded columns for `string_to_array(col, chr(30), chr(31))` (one text parameter each,
 * much cheaper for PostgreSQL to take apart than JSON): id, ts, event, port, proto, source, host,
 * container_id, container_name, and the lines joined by newlines (a JSON line never holds a raw newline).
 */
export function eventColumns(rows: readonly EventRow[]): string[] {
  const cols: string[][] = Array.from({ length: 9 }, () => new Array(rows.length));
  const lines = new Array<string>(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    cols[0][i] = r.id;
    cols[1][i] = r.ts;
    cols[2][i] = r.event ?? NULL;
    cols[3][i] = r.port === null ? NULL : String(r.port);
    cols[4][i] = r.proto ?? NULL;
    cols[5][i] = r.source ?? NULL;
    cols[6][i] = r.host ?? NULL;
    cols[7][i] = r.container_id ?? NULL;
    cols[8][i] = r.container_name ?? NULL;
    lines[i] = r.line;
  }
  return [...cols.map((c) => c.join(SEP)), lines.join("\n")];
}

/**
 * The port updates as twelve encoded columns, like {@link eventColumns}: host, container_id, netns, proto,
 * port, open, container_name, observed_at, event_id, since, reopened, and the entries joined by newlines
 * (JSON text, which never holds a raw newline).
 */
export function portColumns(ports: readonly PortRow[]): string[] {
  const cols: string[][] = Array.from({ length: 11 }, () => new Array(ports.length));
  const entries = new Array<string>(ports.length);
  for (let i = 0; i < ports.length; i++) {
    const p = ports[i];
    cols[0][i] = p.host;
    cols[1][i] = p.container_id;
    cols[2][i] = String(p.netns);
    cols[3][i] = p.proto;
    cols[4][i] = String(p.port);
    cols[5][i] = p.open ? "t" : "f";
    cols[6][i] = p.container_name ?? NULL;
    cols[7][i] = p.observed_at;
    cols[8][i] = p.event_id;
    cols[9][i] = p.since;
    cols[10][i] = p.reopened ? "t" : "f";
    entries[i] = p.entry;
  }
  return [...cols.map((c) => c.join(SEP)), entries.join("\n")];
}

const int = (v: unknown): number | null =>
  typeof v === "number" && Number.isInteger(v) && Math.abs(v) < 2 ** 31 ? v : null;

/**
 * The compact JSON line of a record, `ts` and `id` first as in every stored line (a record whose keys are in
 * another order in memory is copied in that order first).
 */
export function lineOf(r: Record_): string {
  let first: string | undefined, second: string | undefined;
  for (const k in r) {
    if (first === undefined) first = k;
    else {
      second = k;
      break;
    }
  }
  if (first === "ts" && second === "id") return JSON.stringify(r);
  const { ts, id, ...rest } = r;
  return JSON.stringify({ ts, id, ...rest });
}

/** A row of `events` (without seq). */
export interface EventRow {
  id: string;
  ts: string;
  event: string | null;
  port: number | null;
  proto: string | null;
  source: string | null;
  host: string | null;
  container_id: string | null;
  container_name: string | null;
  line: string;
}

/** The `events` row of record `r` whose compact JSON is `line`. */
export function eventRow(r: Record_, line: string): EventRow {
  return {
    id: text(r.id) ?? "",
    ts: r.ts,
    event: text(r.event),
    port: int(r.port),
    proto: text(r.proto),
    source: text(r.source),
    host: text(r.host),
    container_id: text(r.container_id),
    container_name: text(r.container_name),
    line,
  };
}

/** One `port_state` upsert: the newest event of a port in the batch. */
export interface PortRow {
  host: string;
  container_id: string;
  netns: number;
  proto: string;
  port: number;
  open: boolean;
  container_name: string | null;
  observed_at: string;
  event_id: string;
  since: string;
  reopened: boolean;
  entry: string;
}

/** A stored port event (an open, close or change with a numeric port). */
type PortEvent = Record_ & PortRecord;

/** The event's version: its watcher time (else listener time), as ms, then its id. */
interface Version {
  ms: number;
  id: string;
  r: PortEvent;
}

function version(r: PortEvent): Version {
  const t = typeof r.observed_at === "string" ? Date.parse(r.observed_at) : NaN;
  return { ms: Number.isNaN(t) ? Date.parse(r.ts) : t, id: r.id, r };
}

function older(a: Version, b: Version): number {
  return a.ms - b.ms || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/**
 * The OpenPort fields of an open or change event, `since` left to the database (the rule is
 * listener/ui/ports_rule.js: the same entry as the file store's and the page's).
 */
function entryOf(r: PortEvent): Omit<OpenPort, "since"> {
  const { since: _, ...entry } = openPort(r, "");
  return entry;
}

/**
 * One update per port touched by `records`, sorted by key (a fixed lock order). The update carries the newest
 * event (by observed_at, then id); a port is open after an open or a change, closed after a close (the rule
 * of listener/ui/ports_rule.js). `since` is the watcher time of the first event of the trailing run of opens
 * and changes, and `reopened` says whether a close came before that run within the batch; the upsert keeps
 * the stored `since` of a port that stays open. A close carries no `entry` (`''`): only open rows are ever
 * listed.
 */
export function portRows(records: readonly Record_[]): PortRow[] {
  // Most ports appear once per batch: a key maps to its record, or to a list when there are several.
  const byKey = new Map<string, PortEvent | PortEvent[]>();
  for (const r of records) {
    if (!isPortEvent(r)) continue;
    const k = portKey(r);
    const had = byKey.get(k);
    if (had === undefined) byKey.set(k, r);
    else if (Array.isArray(had)) had.push(r);
    else byKey.set(k, [had, r]);
  }
  const keys = [...byKey.keys()].sort();
  const out = new Array<PortRow>(keys.length);
  for (let i = 0; i < keys.length; i++) {
    const got = byKey.get(keys[i])!;
    let last: Version, first: PortEvent, reopened: boolean;
    if (Array.isArray(got)) {
      const versions = got.map(version).sort(older);
      last = versions[versions.length - 1];
      let runStart = versions.length - 1;
      while (runStart > 0 && keepsOpen(versions[runStart - 1].r)) runStart--;
      first = versions[runStart].r;
      reopened = runStart > 0;
    } else {
      last = version(got);
      first = got;
      reopened = false;
    }
    const r = last.r;
    const open = keepsOpen(r);
    out[i] = {
      host: text(r.host) ?? "",
      container_id: text(r.container_id) ?? "",
      netns: typeof r.netns === "number" ? r.netns : -1,
      proto: text(r.proto) ?? "",
      port: r.port,
      open,
      container_name: text(r.container_name),
      observed_at: new Date(last.ms).toISOString(),
      event_id: text(r.id) ?? "",
      since: text(sinceOf(first)) ?? "",
      reopened,
      entry: open ? JSON.stringify(entryOf(r)) : "",
    };
  }
  return out;
}

/** An OpenPort from a `port_state` row's `entry` and `since`, fields in the file store's order. */
export function openPortOf(entry: string, since: string): OpenPort {
  const e = JSON.parse(entry) as Omit<OpenPort, "since">;
  return {
    host: e.host,
    container_id: e.container_id,
    container_name: e.container_name,
    // Entries written before these fields existed have none.
    image: e.image ?? null,
    compose_project: e.compose_project ?? null,
    compose_service: e.compose_service ?? null,
    netns: e.netns,
    proto: e.proto,
    port: e.port,
    family: e.family,
    addrs: e.addrs,
    pids: e.pids,
    process: e.process,
    source: e.source,
    policy: e.policy ?? null,
    since,
    ts: e.ts,
    event_id: e.event_id,
  };
}
