/**
 * Daily partitions of `events` and retention. A UUIDv7 starts with its creation time in milliseconds (48 bits
 * as 12 hex digits, split 8-4 by a dash), so the ids made during one UTC day are the strings from that day's
 * first millisecond prefix up to the next day's: each day is an id range (COLLATE "C" compares bytes). The
 * listener creates partitions a few days ahead; rows that arrived in `events_default` for a day before its
 * partition existed (a watcher clock running ahead) are moved into it when it is created. Retention drops
 * whole partitions; the default partition (ids that are not UUIDv7) is never dropped.
 * @module
 */
import type { Sql } from "postgres";

/** One day in milliseconds. */
export const DAY_MS = 86_400_000;

/** Advisory lock key of partition maintenance ("pwpart"). */
export const MAINTENANCE_LOCK = 0x707770617274;

/** The UUIDv7 text prefix of Unix millisecond `ms`: `xxxxxxxx-xxxx`. */
export function idBound(ms: number): string {
  const hex = Math.max(0, Math.floor(ms)).toString(16).padStart(12, "0");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}`;
}

/** Start of the UTC day holding `ms`. */
export function dayStart(ms: number): number {
  return Math.floor(ms / DAY_MS) * DAY_MS;
}

/** Partition name of the UTC day starting at `dayMs`: `events_p20261125`. */
export function partitionName(dayMs: number): string {
  return `events_p${new Date(dayMs).toISOString().slice(0, 10).replaceAll("-", "")}`;
}

/** The day a partition name stands for, or undefined for other tables. */
export function partitionDay(name: string): number | undefined {
  const m = /^events_p(\d{4})(\d{2})(\d{2})$/.exec(name);
  return m ? Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) : undefined;
}

/** Names of the daily partitions that exist now. */
export async function listPartitions(sql: Sql): Promise<string[]> {
  const rows = await sql`
    SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'events'::regclass ORDER BY c.relname`;
  return rows.map((r) => String(r.name)).filter((n) => partitionDay(n) !== undefined);
}

/** Create the partition of the day starting at `dayMs` unless it exists; true when this call created it. */
export async function createPartition(sql: Sql, dayMs: number): Promise<boolean> {
  const name = partitionName(dayMs);
  const lo = idBound(dayMs), hi = idBound(dayMs + DAY_MS);
  return await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${MAINTENANCE_LOCK})`;
    const [{ exists }] = await tx`SELECT to_regclass(${name}) IS NOT NULL AS exists`;
    if (exists) return false;
    await tx`CREATE TABLE ${tx(name)} (LIKE events INCLUDING DEFAULTS)`;
    await tx`
      WITH moved AS (DELETE FROM events_default WHERE id >= ${lo} AND id < ${hi} RETURNING *)
      INSERT INTO ${tx(name)} SELECT * FROM moved`;
    await tx.unsafe(`ALTER TABLE events ATTACH PARTITION "${name}" FOR VALUES FROM ('${lo}') TO ('${hi}')`);
    return true;
  });
}

/** What one maintenance pass did. */
export interface MaintenanceReport {
  created: string[];
  dropped: string[];
  /** Closed-port tombstones removed (older than the retention). */
  tombstones: number;
}

/** Options of {@link maintainPartitions}. */
export interface MaintenanceOptions {
  /** The current time (tests pass another). */
  now: number;
  /** Days of events kept; 0 keeps everything. */
  retentionDays: number;
  /** Days of partitions created ahead of today (default 2), and one behind. */
  aheadDays?: number;
}

/**
 * Create the partitions of yesterday, today and `aheadDays` ahead; with a retention, drop the partitions whose
 * whole day is older than `retentionDays` and the tombstones of ports closed before then.
 */
export async function maintainPartitions(sql: Sql, opts: MaintenanceOptions): Promise<MaintenanceReport> {
  const report: MaintenanceReport = { created: [], dropped: [], tombstones: 0 };
  const today = dayStart(opts.now);
  for (let d = -1; d <= (opts.aheadDays ?? 2); d++) {
    const day = today + d * DAY_MS;
    if (opts.retentionDays > 0 && day + DAY_MS <= opts.now - opts.retentionDays * DAY_MS) continue;
    if (await createPartition(sql, day)) report.created.push(partitionName(day));
  }
  if (opts.retentionDays > 0) {
    const cutoff = opts.now - opts.retentionDays * DAY_MS;
    for (const name of await listPartitions(sql)) {
      const day = partitionDay(name)!;
      if (day + DAY_MS > cutoff) continue;
      await sql.begin(async (tx) => {
        await tx`SELECT pg_advisory_xact_lock(${MAINTENANCE_LOCK})`;
        await tx`DROP TABLE IF EXISTS ${tx(name)}`;
      });
      report.dropped.push(name);
    }
    const gone = await sql`
      DELETE FROM port_state WHERE NOT open AND observed_at < ${new Date(cutoff).toISOString()}::timestamptz`;
    report.tombstones = gone.count;
  }
  return report;
}
