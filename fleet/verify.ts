/**
 * The fleet's end checks: (a) the store holds every acknowledged event exactly once (no event missing, none
 * twice, none the fleet did not send), read from the file store's logs, from PostgreSQL directly, or by
 * paging through `GET /events`; (b) `GET /ports` on every replica equals the simulated truth.
 * @module
 */
import { logFiles, readLines } from "../listener/file/log_reader.ts";
import { type HostSim, truthKey } from "./traffic.ts";

/** Stored ids of this run's hosts and how many times each is stored. */
export type StoredIds = Map<string, number>;

const ID_RE = /"id":"([^"]+)"/;
const HOST_RE = /"host":"([^"]+)"/;

/** Ids in JSON-lines logs (rotated files included) whose host starts with `prefix`. */
export async function idsFromLogs(paths: string[], prefix: string): Promise<StoredIds> {
  const out: StoredIds = new Map();
  for (const path of paths) {
    for (const file of await logFiles(path)) {
      for await (const line of readLines(file)) {
        const host = HOST_RE.exec(line)?.[1];
        if (!host?.startsWith(prefix)) continue;
        const id = ID_RE.exec(line)?.[1];
        if (id) out.set(id, (out.get(id) ?? 0) + 1);
      }
    }
  }
  return out;
}

/**
 * Ids from `GET /events`, paged oldest first by the listener's `ts` between `since` and `until` (10,000 a
 * page; the records of the boundary millisecond, returned again by the next page, are counted once).
 */
export async function idsFromApi(url: string, prefix: string, since: Date, until: Date): Promise<StoredIds> {
  const out: StoredIds = new Map();
  let from = since.toISOString();
  let boundary = new Set<string>();
  for (;;) {
    const q = new URLSearchParams({ since: from, until: until.toISOString(), order: "asc", limit: "10000" });
    const res = await fetch(`${url}/events?${q}`);
    if (!res.ok) throw new Error(`GET /events answered ${res.status}: ${await res.text()}`);
    const { events } = await res.json() as { events: { id: string; ts: string; host?: string }[] };
    const next = new Set<string>();
    const lastTs = events.at(-1)?.ts;
    for (const e of events) {
      if (e.ts === from && boundary.has(e.id)) continue;
      if (e.ts === lastTs) next.add(e.id);
      if (typeof e.host === "string" && e.host.startsWith(prefix)) out.set(e.id, (out.get(e.id) ?? 0) + 1);
    }
    if (events.length < 10000) return out;
    if (lastTs === from) {
      throw new Error(`more than 10,000 events share the listener time ${from}: cannot page by time`);
    }
    from = lastTs!;
    boundary = next;
  }
}

/** What (a) found. */
export interface EventCheck {
  /** Events the fleet sent (all acknowledged once the fleet flushed). */
  expected: number;
  /** Distinct ids of this run in the store. */
  stored: number;
  /** Sent but not stored. */
  missing: number;
  /** Stored more than once (ids, and extra copies). */
  duplicated: number;
  extraCopies: number;
  /** Stored for this run's hosts but never sent. */
  unexpected: number;
  /** A few ids of each problem. */
  examples: string[];
}

/** Compare the ids sent with the ids stored. */
export function checkEvents(sent: readonly string[], stored: StoredIds): EventCheck {
  const check: EventCheck = {
    expected: sent.length,
    stored: stored.size,
    missing: 0,
    duplicated: 0,
    extraCopies: 0,
    unexpected: 0,
    examples: [],
  };
  const seen = new Set<string>();
  for (const id of sent) {
    seen.add(id);
    const n = stored.get(id);
    if (n === undefined) {
      check.missing++;
      if (check.examples.length < 5) check.examples.push(`missing ${id}`);
    }
  }
  for (const [id, n] of stored) {
    if (n > 1) {
      check.duplicated++;
      check.extraCopies += n - 1;
      if (check.examples.length < 10) check.examples.push(`${id} stored ${n} times`);
    }
    if (!seen.has(id)) {
      check.unexpected++;
      if (check.examples.length < 15) check.examples.push(`unexpected ${id}`);
    }
  }
  return check;
}

/** What (b) found on one replica. */
export interface PortsCheck {
  url: string;
  /** Open ports in the truth. */
  expected: number;
  /** Open ports of this run's hosts in GET /ports. */
  listed: number;
  missing: number;
  extra: number;
  /** Listed, but not as the last open event said (event id, family, addresses, pids, container name). */
  wrong: number;
  examples: string[];
}

interface ListedPort {
  host: string;
  container_id: string | null;
  container_name: string | null;
  netns: number | null;
  proto: string;
  port: number;
  family: number | null;
  addrs: string[];
  pids: number[];
  event_id: string;
}

/** Compare `GET /ports` of `url` with the hosts' truth. */
export async function checkPorts(url: string, sims: readonly HostSim[], prefix: string): Promise<PortsCheck> {
  const res = await fetch(`${url}/ports`);
  if (!res.ok) throw new Error(`GET /ports on ${url} answered ${res.status}: ${await res.text()}`);
  const { ports } = await res.json() as { ports: ListedPort[] };
  const listed = new Map<string, ListedPort>();
  for (const p of ports) {
    if (typeof p.host !== "string" || !p.host.startsWith(prefix)) continue;
    listed.set(truthKey(p.host, p.container_id, p.netns, p.proto, p.port), p);
  }
  const check: PortsCheck = {
    url,
    expected: 0,
    listed: listed.size,
    missing: 0,
    extra: 0,
    wrong: 0,
    examples: [],
  };
  const note = (s: string) => check.examples.length < 10 && check.examples.push(s);
  const truthKeys = new Set<string>();
  for (const sim of sims) {
    for (const [key, p] of sim.open) {
      check.expected++;
      truthKeys.add(key);
      const got = listed.get(key);
      if (!got) {
        check.missing++;
        note(`missing ${key} (opened by ${p.event.id})`);
        continue;
      }
      const e = p.event;
      const same = got.event_id === e.id && got.family === e.family &&
        JSON.stringify(got.addrs) === JSON.stringify(e.addrs) &&
        JSON.stringify(got.pids) === JSON.stringify(e.pids) && got.container_name === e.container_name;
      if (!same) {
        check.wrong++;
        note(`${key}: listed as event ${got.event_id}, truth ${e.id}`);
      }
    }
  }
  for (const key of listed.keys()) {
    if (!truthKeys.has(key)) {
      check.extra++;
      note(`extra ${key} (closed in the truth)`);
    }
  }
  return check;
}

/** True when the check found nothing wrong. */
export function eventsOk(c: EventCheck): boolean {
  return c.missing === 0 && c.duplicated === 0 && c.unexpected === 0;
}

/** True when the check found nothing wrong. */
export function portsOk(c: PortsCheck): boolean {
  return c.missing === 0 && c.extra === 0 && c.wrong === 0 && c.listed === c.expected;
}
