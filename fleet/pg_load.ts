/**
 * Fill a PostgreSQL store fast with a synthetic history, for the `/ports` benchmark: `count` events written by
 * SQL (`INSERT ... SELECT generate_series`) straight into the schema the listener created (listener/pg/
 * migrations.ts), with the `port_state` rows that history leaves behind, as the store would have written them.
 * No listener may run on the database meanwhile: its queries would scan while the indexes are rebuilt. *
 * The history: 1,000 hosts, each with the host itself and 4 containers; `count` events are open/close pairs
 * of ephemeral ports (every pair a port of its own, so the history leaves `count / 2` closed ports as
 * tombstones in `port_state`), spread over the last two hours, with UUIDv7 ids; then 4 services (80, 443,
 * 5432 tcp, 53 udp) open in every container and host, which is what `/ports` lists.
 * @module
 */
import type { TestPostgres } from "../listener/pg/testing_postgres.ts";

/** Hosts in the synthetic history. */
export const LOAD_HOSTS = 1000;
/** Containers per host (index 0 is the host itself). */
const SLOTS = 5;

/** SQL expressions of one event `i` (a bigint column `i`) of the history. */
const EVENT_COLUMNS = (n: number, baseMs: number) => `
  g.i,
  (g.i / 2) AS p,
  CASE WHEN g.i % 2 = 0 THEN 'open' ELSE 'close' END AS ev,
  'load-h' || lpad(((g.i / 2) % ${LOAD_HOSTS})::text, 5, '0') AS host,
  ((g.i / 2) / ${LOAD_HOSTS}) % ${SLOTS} AS c,
  30000 + ((g.i / 2) / ${LOAD_HOSTS * SLOTS}) % 31000 AS port,
  CASE WHEN ((g.i / 2) / ${LOAD_HOSTS * SLOTS}) % 4 = 0 THEN 'udp' ELSE 'tcp' END AS proto,
  (${baseMs}::bigint + (g.i * 7200000) / ${n}) AS ms`;

/** The UUIDv7 text of Unix ms column `ms` and unique number `i`. */
const UUID = (ms: string, i: string) => `
  substr(lpad(to_hex(${ms}), 12, '0'), 1, 8) || '-' || substr(lpad(to_hex(${ms}), 12, '0'), 9, 4) || '-7' ||
  lpad(to_hex(${i} % 4096), 3, '0') || '-8' || lpad(to_hex((${i} / 4096) % 4096), 3, '0') || '-' ||
  lpad(to_hex(${i}), 12, '0')`;

/** Container id, name and netns of host `h` (text), slot `c`. */
const CONTAINER = (hostNum: string, c: string) => ({
  id:
    `CASE WHEN ${c} = 0 THEN NULL ELSE md5(${hostNum} || '-' || ${c}) || md5(${c} || '-' || ${hostNum}) END`,
  name: `CASE WHEN ${c} = 0 THEN NULL ELSE 'svc-' || ${c} END`,
  netns: `CASE WHEN ${c} = 0 THEN 4026531840 ELSE 4026532000 + ${hostNum}::bigint * 10 + ${c} END`,
});

const jstr = (e: string) => `coalesce('"' || ${e} || '"', 'null')`;

/** The compact JSON line of an event, as the listener stores it (ts first, then the event's fields). */
const LINE = (r: string) => `
  '{"ts":"' || ${r}.tst || '","id":"' || ${r}.id || '","event":"' || ${r}.ev || '","port":' || ${r}.port ||
  ',"proto":"' || ${r}.proto || '","family":4,"addrs":["0.0.0.0"],"pids":[' ||
  CASE WHEN ${r}.ev = 'open' THEN (100 + ${r}.p % 60000)::text ELSE '' END || '],"container_id":' ||
  ${jstr(`${r}.cid`)} || ',"container_name":' || ${jstr(`${r}.cname`)} ||
  ',"source":"ebpf","observed_at":"' || ${r}.tst || '","host":"' || ${r}.host || '","netns":' || ${r}.netns ||
  ',"process":{"pid":' || (100 + ${r}.p % 60000) || ',"comm":"worker","cmdline":"worker --port ' || ${r}.port ||
  '","uid":0}}'`;

/** The OpenPort JSON of an open (port_state.entry, without since). */
const ENTRY = (r: string) => `
  '{"host":"' || ${r}.host || '","container_id":' || ${jstr(`${r}.cid`)} || ',"container_name":' ||
  ${
  jstr(`${r}.cname`)
} || ',"netns":' || ${r}.netns || ',"proto":"' || ${r}.proto || '","port":' || ${r}.port ||
  ',"family":4,"addrs":["0.0.0.0"],"pids":[' || (100 + ${r}.p % 60000) ||
  '],"process":null,"source":"ebpf","ts":"' || ${r}.tst || '","event_id":"' || ${r}.id || '"}'`;

/** Rows `lo`..`hi` of the history, with id, times and container columns. */
function historySelect(lo: number, hi: number, n: number, baseMs: number, step = 1): string {
  const ct = CONTAINER("(x.p % " + LOAD_HOSTS + ")::text", "x.c");
  return `
    SELECT x.*, ${UUID("x.ms", "x.i")} AS id,
      to_char(to_timestamp(x.ms / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS tst,
      ${ct.id} AS cid, ${ct.name} AS cname, ${ct.netns} AS netns
    FROM (SELECT ${
    EVENT_COLUMNS(n, baseMs)
  } FROM generate_series(${lo}::bigint, ${hi}::bigint, ${step}) AS g(i)) x`;
}

/** The container id of host `h`, slot `c` (1-4) in the history: what to ask `/ports` for. */
export async function loadedContainerId(
  pg: TestPostgres,
  database: string,
  h: number,
  c: number,
): Promise<string> {
  return (await pg.psql(`SELECT md5('${h}-${c}') || md5('${c}-${h}')`, database)).trim();
}

/**
 * Write `count` history events (in chunks of 1 M, `progress` told after each) and the port_state they leave,
 * plus the services' opens. The listener must have created the schema (started once on `database`).
 */
export async function loadHistory(
  pg: TestPostgres,
  database: string,
  count: number,
  progress: (done: number) => void = () => {},
): Promise<void> {
  const baseMs = Date.now() - 3 * 3600_000;
  const chunk = 1_000_000;
  // Bulk-load practice: drop the secondary indexes of events, load, build them again (a sorted build is many
  // times faster than 10 M single-row index insertions). The same definitions are restored, from pg_indexes.
  const defs = (await pg.psql(
    `SELECT indexname || chr(9) || indexdef FROM pg_indexes
     WHERE schemaname = 'public' AND tablename = 'events' AND indexname <> 'events_id_key'`,
    database,
  )).split("\n").filter((l) => l !== "").map((l) => l.split("\t"));
  // Every index over events and its partitions, to compare after the rebuild.
  const census = async () =>
    (await pg.psql(
      `SELECT count(*) FROM pg_indexes i JOIN pg_class c ON c.relname = i.indexname
       JOIN pg_index x ON x.indexrelid = c.oid WHERE i.tablename LIKE 'events%' AND x.indisvalid`,
      database,
    )).trim();
  const before = await census();
  await pg.psql(defs.map(([name]) => `DROP INDEX "${name}";`).join("\n"), database);
  // Two sessions at once, one per core.
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < count) {
      const lo = next;
      const hi = Math.min(count, lo + chunk) - 1;
      next = hi + 1;
      await pg.psql(
        `SET synchronous_commit = off;
         INSERT INTO events (id, ts, event, port, proto, source, host, container_id, container_name, line)
         SELECT h.id, h.tst::timestamptz, h.ev, h.port, h.proto, 'ebpf', h.host, h.cid, h.cname, ${LINE("h")}
         FROM (${historySelect(lo, hi, count, baseMs)}) h;`,
        database,
      );
      done += hi - lo + 1;
      progress(done);
    }
  };
  await Promise.all([worker(), worker()]);
  await pg.psql(
    // pg_indexes shows a partitioned table's index as "ON ONLY events", which would not build the
    // partitions' indexes: build them all.
    `SET maintenance_work_mem = '256MB';\n` +
      defs.map(([, def]) => `${def.replace(" ON ONLY ", " ON ")};`).join("\n"),
    database,
  );
  const after = await census();
  if (after !== before) {
    throw new Error(`index rebuild: ${before} valid indexes before the load, ${after} after`);
  }
  // Every pair's port is closed at the end: one tombstone per pair (the odd events), the close's version.
  const half = Math.floor(count / 4) * 2;
  await Promise.all([[1, half - 1], [half + 1, count - 1]].map(([lo, hi]) =>
    pg.psql(
      `SET synchronous_commit = off;
       INSERT INTO port_state (host, container_id, netns, proto, port, open, container_name, observed_at,
                               event_id, since, reopened, entry)
       SELECT h.host, coalesce(h.cid, ''), h.netns, h.proto, h.port, false, h.cname, h.tst::timestamptz, h.id,
              h.tst, false, ${ENTRY("h")}
       FROM (${historySelect(lo, hi, count, baseMs, 2)}) h
       ON CONFLICT DO NOTHING;`,
      database,
    )
  ));
  // Then the services open in every host and container (ids after the history's).
  const services = `(VALUES (80, 'tcp'), (443, 'tcp'), (5432, 'tcp'), (53, 'udp')) AS s(port, proto)`;
  const ct = CONTAINER("hh.h::text", "cc.c");
  const nowMs = Date.now() - 60_000;
  await pg.psql(
    `SET synchronous_commit = off;
     CREATE TEMP TABLE svc AS
     SELECT 'open'::text AS ev, 'load-h' || lpad(hh.h::text, 5, '0') AS host, s.port, s.proto,
            ${ct.id} AS cid, ${ct.name} AS cname, ${ct.netns} AS netns, (${count} + row_number() OVER ()) AS p,
            ${UUID(String(nowMs), `(${count} + row_number() OVER ())`)} AS id,
            to_char(to_timestamp(${nowMs} / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS tst
     FROM generate_series(0, ${LOAD_HOSTS - 1}) AS hh(h), generate_series(0, ${
      SLOTS - 1
    }) AS cc(c), ${services};
     INSERT INTO events (id, ts, event, port, proto, source, host, container_id, container_name, line)
     SELECT v.id, v.tst::timestamptz, v.ev, v.port, v.proto, 'ebpf', v.host, v.cid, v.cname, ${
      LINE("v")
    } FROM svc v;
     INSERT INTO port_state (host, container_id, netns, proto, port, open, container_name, observed_at, event_id,
                             since, reopened, entry)
     SELECT v.host, coalesce(v.cid, ''), v.netns, v.proto, v.port, true, v.cname, v.tst::timestamptz, v.id, v.tst,
            false, ${ENTRY("v")} FROM svc v;
     ANALYZE events; ANALYZE port_state;`,
    database,
  );
}
