import assert from "node:assert/strict";
import postgres from "postgres";
import { postgresSkipReason, startPostgres } from "./testing_postgres.ts";

const skip = postgresSkipReason();
if (skip) console.log(`testing_postgres_test.ts: skipped: ${skip}`);

Deno.test({
  name: "testing_postgres: starts, creates a database, survives a restart, removes everything on close",
  ignore: skip !== undefined,
  async fn() {
    const pg = await startPostgres();
    try {
      const url = await pg.createDatabase("harness");
      const sql = postgres(url, { max: 1, onnotice: () => {} });
      try {
        await sql`CREATE TABLE t (v int)`;
        await sql`INSERT INTO t VALUES (1)`;
        await pg.restart();
        // The client reconnects by itself after the restart; the committed row is there.
        const rows = await sql`SELECT v FROM t`;
        assert.deepEqual(rows.map((r) => r.v), [1]);
        await pg.stop();
        await assert.rejects(() => sql`SELECT 1`);
        await pg.start();
        assert.deepEqual((await sql`SELECT 2 AS v`)[0].v, 2);
      } finally {
        await sql.end({ timeout: 1 });
      }
      assert.deepEqual((await pg.psql("SELECT 40 + 2")).trim(), "42");
    } finally {
      await pg.close();
    }
    await assert.rejects(() => Deno.stat(pg.dir));
  },
});
