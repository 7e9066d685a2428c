/**
 * Check (a) straight from PostgreSQL: the ids of a run's hosts in the `events` table the PostgreSQL store
 * creates (listener/pg/migrations.ts), read with psql through the test harness.
 * @module
 */
import type { TestPostgres } from "../listener/pg/testing_postgres.ts";
import type { StoredIds } from "./verify.ts";

/** Ids stored for hosts whose name starts with `prefix`, and how many rows each has. */
export async function idsFromPostgres(
  pg: TestPostgres,
  database: string,
  prefix: string,
): Promise<StoredIds> {
  if (!/^[a-z0-9-]+$/i.test(prefix)) throw new Error(`host prefix ${JSON.stringify(prefix)}: use [a-z0-9-]`);
  const out = await pg.psql(
    `SELECT id, count(*) FROM events WHERE host LIKE '${prefix}%' GROUP BY id`,
    database,
  );
  const ids: StoredIds = new Map();
  for (const line of out.split("\n")) {
    if (line === "") continue;
    const bar = line.lastIndexOf("|");
    ids.set(line.slice(0, bar), Number(line.slice(bar + 1)));
  }
  return ids;
}
