/**
 * The PostgreSQL store's metrics (added to the listener's /metrics when STORE_URL is set):
 *
 * | metric                                              | type      | labels |
 * | --------------------------------------------------- | --------- | ------ |
 * | `portwatch_listener_pg_commit_duration_seconds`     | histogram | result |
 * | `portwatch_listener_pg_batch_events`                | histogram |        |
 * | `portwatch_listener_pg_commit_errors_total`         | counter   |        |
 * | `portwatch_listener_pg_query_errors_total`          | counter   |        |
 * | `portwatch_listener_pg_maintenance_errors_total`    | counter   |        |
 * | `portwatch_listener_pg_queued_events`               | gauge     |        |
 * | `portwatch_listener_pg_notifications_total`         | counter   |        |
 * | `portwatch_listener_pg_stream_errors_total`         | counter   |        |
 * | `portwatch_listener_pg_client_resets_total`         | counter   |        |
 * | `portwatch_listener_pg_write_after_close_total`     | counter   |        |
 * | `portwatch_listener_pg_shed_requests_total`         | counter   |        |
 * | `portwatch_listener_pg_commit_retries_total`        | counter   |        |
 * | `portwatch_listener_pg_duplicate_batches_total`     | counter   |        |
 * @module
 */
import type { Registry } from "../../infra/metrics.ts";
import type { GroupWriter } from "./writer.ts";
import type { LiveFeed } from "./live.ts";
import { type PgClient, swallowedWrites } from "./client.ts";

const COMMIT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const BATCH_BUCKETS = [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

/** Register the metrics of a PostgreSQL store's writer, live feed and error counters. */
export function registerPgMetrics(
  registry: Registry,
  store: {
    writer: GroupWriter;
    live: LiveFeed;
    client: PgClient;
    counters: { queryErrors: number; maintenanceErrors: number; shed: number };
  },
): void {
  registry.counter({
    name: "portwatch_listener_pg_client_resets_total",
    help: "Times the PostgreSQL client was replaced by a fresh one after a connection failure.",
    collect: () => store.client.resets,
  });
  registry.counter({
    name: "portwatch_listener_pg_write_after_close_total",
    help: "Client write-after-close exceptions stopped by the guard (porsager/postgres#1208).",
    collect: () => swallowedWrites(),
  });
  registry.counter({
    name: "portwatch_listener_pg_shed_requests_total",
    help: "Ingest requests refused at once (503) because the queue would take over 1 s to commit.",
    collect: () => store.counters.shed,
  });
  registry.counter({
    name: "portwatch_listener_pg_commit_retries_total",
    help: "Insert transactions retried after a deadlock or serialization failure.",
    collect: () => store.writer.retries,
  });
  registry.counter({
    name: "portwatch_listener_pg_duplicate_batches_total",
    help: "Batches written again skipping stored ids, after their plain insert met an id already stored.",
    collect: () => store.writer.duplicateFallbacks,
  });
  const commit = registry.histogram({
    name: "portwatch_listener_pg_commit_duration_seconds",
    help: "Time of each group-commit transaction (insert, ports upsert, commit), by result.",
    labelNames: ["result"],
    buckets: COMMIT_BUCKETS,
  });
  const batch = registry.histogram({
    name: "portwatch_listener_pg_batch_events",
    help: "Events per group-commit transaction.",
    buckets: BATCH_BUCKETS,
  });
  let commitErrors = 0;
  registry.counter({
    name: "portwatch_listener_pg_commit_errors_total",
    help: "Group-commit transactions that failed (their requests were answered 503).",
    collect: () => commitErrors,
  });
  registry.counter({
    name: "portwatch_listener_pg_query_errors_total",
    help: "Reads (/events, /ports, stream resume) that failed on the database.",
    collect: () => store.counters.queryErrors,
  });
  registry.counter({
    name: "portwatch_listener_pg_maintenance_errors_total",
    help: "Partition maintenance passes that failed (retried at the next interval).",
    collect: () => store.counters.maintenanceErrors,
  });
  registry.gauge({
    name: "portwatch_listener_pg_queued_events",
    help: "Events waiting for a group-commit transaction.",
    collect: () => store.writer.queued,
  });
  registry.counter({
    name: "portwatch_listener_pg_notifications_total",
    help: "Commit notifications received on the LISTEN connection (from every replica).",
    collect: () => store.live.notifications,
  });
  registry.counter({
    name: "portwatch_listener_pg_stream_errors_total",
    help: "Failed reads of the live feed (retried by the next poll).",
    collect: () => store.live.errors,
  });
  const prev = store.writer.onCommit;
  store.writer.onCommit = (s) => {
    prev?.(s);
    commit.observe({ result: s.ok ? "ok" : "error" }, s.seconds);
    if (s.ok) batch.observe(undefined, s.rows);
    else commitErrors++;
  };
}
