/** Helpers for the PostgreSQL store's tests: one throwaway server per test file, a database per test. */
import type { Hono } from "hono";
import { createApp } from "../app.ts";
import { PgStore, type PgStoreOptions } from "./store.ts";
import { postgresSkipReason, startPostgres, type TestPostgres } from "./testing_postgres.ts";

export { postgresSkipReason, startPostgres, type TestPostgres };

/** A replica: a store over `url` and an app over it. */
export interface Replica {
  store: PgStore;
  app: Hono;
}

/** Open a store and an app over `url` (fast polling, short heartbeat); close with `store.close()`. */
export async function openReplica(url: string, over: Partial<PgStoreOptions> = {}): Promise<Replica> {
  const { store } = await PgStore.open({ url, retentionDays: 0, pollMs: 200, startTimeoutMs: 5000, ...over });
  const app = createApp(store, { bodyLimit: 1024 * 1024, heartbeatMs: 200 });
  return { store, app };
}

/** Replicas over `url`, closed after `fn` whatever happens. */
export async function withReplicas(
  url: string,
  count: number,
  fn: (replicas: Replica[]) => Promise<void>,
  over: Partial<PgStoreOptions> = {},
): Promise<void> {
  const replicas: Replica[] = [];
  try {
    for (let i = 0; i < count; i++) replicas.push(await openReplica(url, over));
    await fn(replicas);
  } finally {
    for (const r of replicas) await r.store.close();
  }
}

/** A JSON POST request. */
export const json = (body: unknown): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});

let dbs = 0;
/** A fresh database on `pg`, for one test. */
export function freshDatabase(pg: TestPostgres): Promise<string> {
  return pg.createDatabase(`t${++dbs}_${crypto.randomUUID().slice(0, 8)}`);
}
