/**
 * The PostgreSQL schema, as numbered migrations applied at start. Each start runs the missing ones inside one
 * transaction that first takes a transaction-level advisory lock, so replicas starting at once apply each
 * migration exactly once (the others wait, then find nothing to do). Applied versions are kept in
 * `schema_migrations`. Never edit a released migration: add the next number.
 *
 * Schema (version 1):
 * - `events`: one row per stored record, partitioned by RANGE on `id` (COLLATE "C"). Ids are UUIDv7, whose
 *   text sorts by creation time, so a daily partition is an id range (see partitions.ts); ids that are not
 *   UUIDv7 land in `events_default`. The partition is a function of the id, so `UNIQUE (id)` holds across
 *   partitions: a retry through any replica is found and not stored again. `line` is the compact JSON line
 *   exactly as the stream and queries return it; `seq` is the store order (assigned under an advisory lock,
 *   so it is also commit order: see store.ts); the other columns are typed copies of fields the filters use.
 * - `port_state`: the current state of every port ever seen, keyed like ports_state.ts (host, container_id,
 *   netns, proto, port; missing values as '' or -1), with `open` false for a closed port (a tombstone: a late,
 *   older `open` finds a newer version and is ignored). `entry` is the OpenPort JSON without `since`;
 *   `reopened` tells the upsert that the batch closed and reopened the port (so `since` is not carried over).
 *
 * Version 2 lets replicas commit in parallel (no insert lock): `events.tx` is the inserting transaction's id
 * (xid8), and the store order is (tx, seq), which the stream reads only below the current snapshot's xmin
 * (see live.ts). Indexes: (tx, seq) for the stream and unfiltered queries, (host, tx, seq) for a host's
 * newest events, and plain container_id / container_name indexes (the container condition is an OR of the
 * two, a bitmap scan that cannot use an index order anyway). Version 3 keeps rows without a container out
 * of the container indexes (half the fleet's events are about the host itself).
 *
 * Version 4 adds the learned baselines (`baseline_scopes`, `baseline_ports`; see baselines.ts).
 *
 * Version 5 adds `alert_outbox`, the alerts waiting for Alertmanager and the webhook (alert_outbox.ts).
 *
 * Since version 2 the writer sets `tx` and `seq` itself: `seq` is the row's ordinal within its transaction's
 * single insert statement (so (tx, seq) stays unique and ordered); the sequence remains the default for
 * other writers.
 * @module
 */
import type { Sql } from "postgres";

/** One schema step. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** Advisory lock key of migrations ("pwmigr" in ASCII). */
export const MIGRATION_LOCK = 0x70776d696772;

/** Every migration, in order. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "events partitioned by id, port_state",
    sql: `
      CREATE SEQUENCE events_seq AS bigint;
      CREATE TABLE events (
        seq bigint NOT NULL DEFAULT nextval('events_seq'),
        id text COLLATE "C" NOT NULL,
        ts timestamptz NOT NULL,
        event text,
        port integer,
        proto text,
        source text,
        host text,
        container_id text COLLATE "C",
        container_name text,
        line text NOT NULL,
        CONSTRAINT events_id_key UNIQUE (id)
      ) PARTITION BY RANGE (id);
      ALTER SEQUENCE events_seq OWNED BY events.seq;
      CREATE TABLE events_default PARTITION OF events DEFAULT;
      CREATE INDEX events_seq_idx ON events (seq);
      CREATE INDEX events_host_idx ON events (host, seq);
      CREATE INDEX events_container_id_idx ON events (container_id, seq);
      CREATE INDEX events_container_name_idx ON events (container_name, seq);
      CREATE INDEX events_ts_idx ON events USING brin (ts);

      CREATE TABLE port_state (
        host text NOT NULL,
        container_id text COLLATE "C" NOT NULL,
        netns bigint NOT NULL,
        proto text NOT NULL,
        port integer NOT NULL,
        open boolean NOT NULL,
        container_name text,
        observed_at timestamptz NOT NULL,
        event_id text COLLATE "C" NOT NULL,
        since text NOT NULL,
        reopened boolean NOT NULL DEFAULT false,
        entry text NOT NULL,
        PRIMARY KEY (host, container_id, netns, proto, port)
      ) WITH (fillfactor = 70);
      CREATE INDEX port_state_container_id_idx ON port_state (container_id) WHERE open;
      CREATE INDEX port_state_container_name_idx ON port_state (container_name) WHERE open;
    `,
  },
  {
    version: 2,
    name: "events.tx: stream order by (tx, seq) without an insert lock; fewer indexes",
    sql: `
      -- Rows stored before this version get tx 0: they were committed one at a time (seq order is commit
      -- order), so (0, seq) keeps their order and puts them before every later row. A constant default is
      -- added without rewriting the table; new rows then take their transaction's id.
      ALTER TABLE events ADD COLUMN tx xid8 NOT NULL DEFAULT '0';
      ALTER TABLE events ALTER COLUMN tx SET DEFAULT pg_current_xact_id();
      DROP INDEX events_seq_idx;
      DROP INDEX events_host_idx;
      DROP INDEX events_container_id_idx;
      DROP INDEX events_container_name_idx;
      CREATE INDEX events_tx_seq_idx ON events (tx, seq);
      CREATE INDEX events_host_idx ON events (host, tx, seq);
      CREATE INDEX events_container_id_idx ON events (container_id);
      CREATE INDEX events_container_name_idx ON events (container_name);
    `,
  },
  {
    version: 3,
    name: "container indexes of events only over rows that have a container",
    sql: `
      -- Host-level events (no container) made an entry in both indexes that no query reads: a condition
      -- on a container (=, a prefix range, IN) implies IS NOT NULL, so the planner still uses these.
      DROP INDEX events_container_id_idx;
      DROP INDEX events_container_name_idx;
      CREATE INDEX events_container_id_idx ON events (container_id) WHERE container_id IS NOT NULL;
      CREATE INDEX events_container_name_idx ON events (container_name) WHERE container_name IS NOT NULL;
    `,
  },
  {
    version: 4,
    name: "learned baselines: scopes and their ports",
    sql: `
      -- A scope's learning window (policy/baseline.ts); the first replica to start one wins (ON CONFLICT DO
      -- NOTHING), and every replica reads the stored window back.
      CREATE TABLE baseline_scopes (
        key text COLLATE "C" PRIMARY KEY,
        kind text NOT NULL,
        value text NOT NULL,
        host text,
        started_at timestamptz NOT NULL,
        ends_at timestamptz NOT NULL
      );
      CREATE TABLE baseline_ports (
        scope text COLLATE "C" NOT NULL REFERENCES baseline_scopes (key) ON DELETE CASCADE,
        proto text NOT NULL,
        port integer NOT NULL,
        first_seen timestamptz NOT NULL,
        PRIMARY KEY (scope, proto, port)
      );
    `,
  },
  {
    version: 5,
    name: "alert_outbox: alerts waiting for Alertmanager and the webhook, one row per transition",
    sql: `
      -- Every replica follows every stored record and enqueues the same transitions under the same
      -- dedupe_key: the first insert wins, the others do nothing. A delivered (or dead) row is kept for a
      -- while (done_at) so that a replica running late does not enqueue it again. See alert_outbox.ts.
      CREATE TABLE alert_outbox (
        id bigserial PRIMARY KEY,
        target text NOT NULL,
        dedupe_key text NOT NULL UNIQUE,
        payload jsonb NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        next_at timestamptz NOT NULL DEFAULT now(),
        lease_until timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        done_at timestamptz,
        outcome text,
        last_error text
      );
      CREATE INDEX alert_outbox_pending_idx ON alert_outbox (target, id) WHERE done_at IS NULL;
      CREATE INDEX alert_outbox_done_idx ON alert_outbox (done_at) WHERE done_at IS NOT NULL;
    `,
  },
];

/** Apply the migrations `db` lacks; returns the versions applied by this call (empty when up to date). */
export async function migrate(sql: Sql, migrations: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  return await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`;
    await tx`
      CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`;
    const done = new Set((await tx`SELECT version FROM schema_migrations`).map((r) => Number(r.version)));
    const applied: number[] = [];
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (done.has(m.version)) continue;
      await tx.unsafe(m.sql);
      await tx`INSERT INTO schema_migrations (version, name) VALUES (${m.version}, ${m.name})`;
      applied.push(m.version);
    }
    return applied;
  });
}
