import assert from "node:assert/strict";
import { elapse, waitUntil } from "../../infra/wait.ts";
import { uuidv7 } from "../../events/id.ts";
import { sampleEvent } from "../testing.ts";
import { connect } from "./client.ts";
import { migrate, MIGRATIONS } from "./migrations.ts";
import { freshDatabase, json, postgresSkipReason, startPostgres, withReplicas } from "./testing.ts";

const skip = postgresSkipReason();
if (skip) console.log(`pg/live_test.ts: skipped: ${skip}`);

const ev = (over: Record<string, unknown> = {}) => sampleEvent({ id: uuidv7(), ...over });

Deno.test({
  name: "PostgreSQL live feed: parallel commits, a transaction held open, migration, idle replicas",
  ignore: skip !== undefined,
  async fn(t) {
    await using pg = await startPostgres();

    await t.step("a row of a transaction held open is not skipped once it commits", async () => {
      const url = await freshDatabase(pg);
      await withReplicas(url, 2, async ([a, b]) => {
        const got: string[] = [];
        const unsubscribe = a.store.subscribe((e) => got.push(e.id));
        const sql = connect(url, 1);
        try {
          const held = ev();
          let release!: () => void;
          const released = new Promise<void>((r) => (release = r));
          let inserted!: () => void;
          const didInsert = new Promise<void>((r) => (inserted = r));
          const tx = sql.begin(async (tx) => {
            // The held transaction takes its id first: every later transaction's id is higher.
            await tx`INSERT INTO events (id, ts, line) VALUES (${held.id as string}, now(), ${
              JSON.stringify(held)
            })`;
            inserted();
            await released;
          });
          await didInsert;
          const later = [ev(), ev()];
          assert.equal((await b.app.request("/ingest", json(later))).status, 200);
          // Committed, but behind an open transaction with a lower id: not on the stream yet.
          await elapse(600, "a window (several polls) in which nothing may reach the stream");
          assert.deepEqual(got, []);
          release();
          await tx;
          await waitUntil("every row on the stream", () => got.length >= 3);
          assert.deepEqual(got, [held.id, later[0].id, later[1].id]);
          // Queries use the stream's order too.
          const { events } = await (await b.app.request("/events?order=asc")).json();
          assert.deepEqual(events.map((e: { id: string }) => e.id), got);
        } finally {
          unsubscribe();
          await sql.end();
        }
      });
    });

    await t.step("writers on two replicas commit at once; the stream has every row once", async () => {
      await withReplicas(await freshDatabase(pg), 2, async ([a, b]) => {
        const got: string[] = [];
        const unsubscribe = b.store.subscribe((e) => got.push(e.id));
        try {
          const sent: string[] = [];
          await Promise.all(Array.from({ length: 16 }, async (_, i) => {
            for (let k = 0; k < 8; k++) {
              const batch = Array.from({ length: 50 }, () => ev());
              for (const e of batch) sent.push(e.id as string);
              assert.equal((await [a, b][i % 2].app.request("/ingest", json(batch))).status, 200);
            }
          }));
          await waitUntil("every event on the subscriber", () => got.length >= sent.length);
          assert.equal(new Set(got).size, sent.length);
          assert.deepEqual([...got].sort(), [...sent].sort());
          // In stream order, though b's own rows come from its memory and a's from the table.
          const { events } = await (await a.app.request(`/events?order=asc&limit=${sent.length}`)).json();
          assert.deepEqual(events.map((e: { id: string }) => e.id), got);
        } finally {
          unsubscribe();
        }
      });
    });

    await t.step("a replica without subscribers reads no rows; a resume still gets everything", async () => {
      await withReplicas(await freshDatabase(pg), 2, async ([a, b]) => {
        const first = ev();
        await b.app.request("/ingest", json(first));
        const rest = [ev(), ev(), ev()];
        await b.app.request("/ingest", json(rest));
        await elapse(400, "notifications and a poll or two, in which replica a must read no row");
        assert.equal(a.store.live.rowsRead, 0);
        assert.equal(b.store.live.rowsRead, 0);
        const replayed: string[] = [];
        for await (const e of a.store.replayAfter(first.id as string)) replayed.push(e.id);
        assert.deepEqual(replayed, rest.map((e) => e.id));
      });
    });

    await t.step("subscribers that all filter make the feed read only the rows they match", async () => {
      await withReplicas(await freshDatabase(pg), 2, async ([a, b]) => {
        const got: string[] = [];
        const unsubscribe = a.store.subscribe((e) => got.push(e.id), { host: "probe" });
        try {
          const mine = [ev({ host: "probe" }), ev({ host: "probe" })];
          const others = Array.from({ length: 20 }, () => ev({ host: "other" }));
          // Through the other replica, so that every row is read from the table, not from memory.
          await b.app.request("/ingest", json([others[0], mine[0], ...others.slice(1, 10)]));
          await b.app.request("/ingest", json([...others.slice(10), mine[1]]));
          await waitUntil("both probe rows on the filtered subscriber", () => got.length >= 2);
          assert.deepEqual(got, mine.map((e) => e.id));
          assert.equal(a.store.live.rowsRead, 2, "rows of other hosts were read");
          // A subscriber without a filter makes the feed read every row again.
          const all: string[] = [];
          const unsubscribeAll = a.store.subscribe((e) => all.push(e.id));
          try {
            const next = [ev({ host: "other" }), ev({ host: "probe" })];
            await b.app.request("/ingest", json(next));
            await waitUntil("the unfiltered subscriber's rows", () => all.length >= 2);
            assert.deepEqual(all, next.map((e) => e.id));
            assert.deepEqual(got.slice(2), next.map((e) => e.id), "the feed hands every row it reads");
          } finally {
            unsubscribeAll();
          }
        } finally {
          unsubscribe();
        }
      });
    });

    await t.step("a database of version 1 migrates; its rows keep their order before new ones", async () => {
      const url = await freshDatabase(pg);
      const sql = connect(url, 1);
      const old = [ev(), ev()];
      try {
        assert.deepEqual(await migrate(sql, MIGRATIONS.slice(0, 1)), [1]);
        for (const e of old) {
          await sql`INSERT INTO events (id, ts, line) VALUES (${e.id as string}, now(), ${
            JSON.stringify(e)
          })`;
        }
      } finally {
        await sql.end();
      }
      await withReplicas(url, 1, async ([a]) => {
        const fresh = ev();
        await a.app.request("/ingest", json(fresh));
        const { events } = await (await a.app.request("/events?order=asc")).json();
        assert.deepEqual(events.map((e: { id: string }) => e.id), [...old, fresh].map((e) => e.id));
        const replayed: string[] = [];
        for await (const e of a.store.replayAfter(old[0].id as string)) replayed.push(e.id);
        assert.deepEqual(replayed, [old[1].id, fresh.id]);
      });
    });
  },
});
