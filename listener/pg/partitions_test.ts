import assert from "node:assert/strict";
import { sampleEvent } from "../testing.ts";
import { PgStore } from "./store.ts";
import { MIGRATIONS } from "./migrations.ts";
import { DAY_MS, idBound, listPartitions, partitionDay, partitionName } from "./partitions.ts";
import { freshDatabase, json, openReplica, postgresSkipReason, startPostgres } from "./testing.ts";

/** A UUIDv7-shaped id made at `ms` (uuidv7() itself never goes back in time within a process). */
function idAt(ms: number): string {
  const r = crypto.randomUUID();
  return `${idBound(ms)}-7${r.slice(15, 18)}-8${r.slice(20, 23)}-${r.slice(24)}`;
}

const skip = postgresSkipReason();
if (skip) console.log(`pg/partitions_test.ts: skipped: ${skip}`);

Deno.test("partitions: a day is the range of UUIDv7 ids made that day", () => {
  const day = Date.UTC(2026, 10, 25);
  assert.equal(partitionName(day), "events_p20261125");
  assert.equal(partitionDay("events_p20261125"), day);
  assert.equal(partitionDay("events_default"), undefined);
  const id = idAt(day + 3_600_000);
  assert.ok(idBound(day) <= id && id < idBound(day + DAY_MS));
  assert.ok(idAt(day - 1) < idBound(day));
});

Deno.test({
  name: "PostgreSQL store: migrations and partitions are safe when replicas start at once; retention drops " +
    "whole old partitions and early rows move out of the default partition",
  ignore: skip !== undefined,
  async fn(t) {
    await using pg = await startPostgres();

    await t.step("four stores opening one new database at once apply each migration once", async () => {
      const url = await freshDatabase(pg);
      const opened = await Promise.all(
        [1, 2, 3, 4].map(() => PgStore.open({ url, retentionDays: 0, startTimeoutMs: 5000 })),
      );
      try {
        const applied = opened.map((o) => o.report.migrated);
        assert.equal(applied.filter((m) => m.length > 0).length, 1, JSON.stringify(applied));
        const created = opened.flatMap((o) => o.report.maintenance.created);
        assert.equal(new Set(created).size, created.length, "each partition created once");
        const versions = await pg.psql(
          "SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations",
          url.split("/").at(-1),
        );
        assert.equal(versions.trim(), MIGRATIONS.map((m) => m.version).join(","));
      } finally {
        for (const o of opened) await o.store.close();
      }
    });

    await t.step("retention: partitions older than RETENTION_DAYS are dropped, newer ones kept", async () => {
      const url = await freshDatabase(pg);
      const { store, app } = await openReplica(url, { retentionDays: 7 });
      try {
        const now = Date.now();
        const old = now - 20 * DAY_MS;
        // Twenty days ago this listener was running: it made that day's partition.
        await store.maintain(old);
        const oldEvent = sampleEvent({ id: idAt(old), port: 1 });
        const newEvent = sampleEvent({ id: idAt(now), port: 2 });
        const odd = sampleEvent({ id: "not-a-uuid-7", port: 3 });
        const oldClose = sampleEvent({
          id: idAt(old),
          event: "close",
          port: 4,
          observed_at: new Date(old).toISOString(),
        });
        assert.equal((await app.request("/ingest", json([oldEvent, newEvent, odd, oldClose]))).status, 200);
        const db = url.split("/").at(-1);
        const where = async (id: string) =>
          (await pg.psql(`SELECT tableoid::regclass FROM events WHERE id = '${id}'`, db)).trim();
        assert.equal(await where(oldEvent.id as string), partitionName(old - (old % DAY_MS)));
        assert.equal(await where(odd.id as string), "events_default");
        const report = await store.maintain(now);
        assert.ok(report.dropped.includes(partitionName(old - (old % DAY_MS))), String(report.dropped));
        for (const name of report.dropped) assert.ok(partitionDay(name)! + DAY_MS <= now - 7 * DAY_MS, name);
        assert.equal(report.tombstones, 1, "the port closed 20 days ago is forgotten");
        const ids = (await (await app.request("/events?order=asc")).json()).events.map((e: { id: string }) =>
          e.id
        );
        assert.deepEqual(ids, [newEvent.id, odd.id]);
        assert.ok((await listPartitions(store.client.sql)).includes(partitionName(now - (now % DAY_MS))));
      } finally {
        await store.close();
      }
    });

    await t.step(
      "an event from a day without a partition waits in the default one and moves later",
      async () => {
        const url = await freshDatabase(pg);
        const { store, app } = await openReplica(url);
        try {
          const later = Date.now() + 10 * DAY_MS; // a watcher clock far ahead
          const e = sampleEvent({ id: idAt(later) });
          await app.request("/ingest", json(e));
          const db = url.split("/").at(-1);
          const where = async () =>
            (await pg.psql(`SELECT tableoid::regclass FROM events WHERE id = '${e.id}'`, db)).trim();
          assert.equal(await where(), "events_default");
          await store.maintain(later); // ten days on, the listener makes that day's partition
          assert.equal(await where(), partitionName(later - (later % DAY_MS)));
          // Still unique: a retry is a duplicate.
          const again = await (await app.request("/ingest", json(e))).json();
          assert.deepEqual([again.stored, again.duplicates], [0, 1]);
        } finally {
          await store.close();
        }
      },
    );
  },
});
