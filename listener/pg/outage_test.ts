import assert from "node:assert/strict";
import { elapse, waitUntil } from "../../infra/wait.ts";
import { uuidv7 } from "../../events/id.ts";
import { sampleEvent, sseEvents } from "../testing.ts";
import { connect } from "./store.ts";
import { freshDatabase, json, postgresSkipReason, startPostgres, withReplicas } from "./testing.ts";

const skip = postgresSkipReason();
if (skip) console.log(`pg/outage_test.ts: skipped: ${skip}`);

Deno.test({
  name: "PostgreSQL store: the database restarts under load: 503 + Retry-After meanwhile, then recovery, " +
    "nothing acknowledged lost or doubled, the stream carries on",
  ignore: skip !== undefined,
  async fn() {
    await using pg = await startPostgres();
    const url = await freshDatabase(pg);
    await withReplicas(url, 2, async ([a, b]) => {
      const acked = new Set<string>();
      let unavailable = 0;
      let stop = false;
      // Senders behave like watchers: a batch is retried until it is acknowledged.
      const sender = async (app: typeof a.app) => {
        while (!stop) {
          const batch = Array.from(
            { length: 20 },
            () => sampleEvent({ id: uuidv7(), port: 1 + acked.size % 1000 }),
          );
          for (;;) {
            const res = await app.request("/ingest", json(batch));
            if (res.status === 200) {
              await res.body?.cancel();
              for (const e of batch) acked.add(e.id as string);
              break;
            }
            assert.equal(res.status, 503);
            assert.equal(res.headers.get("retry-after"), "1");
            await res.body?.cancel();
            unavailable++;
            await elapse(50, "the back-off a watcher keeps before it retries");
          }
        }
      };
      // A stream client on replica a.
      const ac = new AbortController();
      const stream = await a.app.request("/events/stream?port=65000", { signal: ac.signal });
      const it = sseEvents(stream.body!);
      await waitUntil("the subscriber", () => a.store.subscribers === 1);

      const senders = [sender(a.app), sender(b.app), sender(a.app)];
      await waitUntil("some events stored", () => acked.size >= 200);
      await pg.stop();
      await waitUntil("a 503 while PostgreSQL is down", () => unavailable > 0);
      const q = await b.app.request("/events?limit=5");
      assert.equal(q.status, 503);
      assert.equal(q.headers.get("retry-after"), "1");
      assert.match((await q.json()).error, /unavailable/);
      assert.equal((await a.app.request("/ports")).status, 503);
      await pg.start();
      const before = acked.size;
      await waitUntil("ingest works again", () => acked.size >= before + 200, 20_000);
      stop = true;
      await Promise.all(senders);

      // After the restart the live feed works again (LISTEN re-established or polling).
      const late = sampleEvent({ id: uuidv7(), port: 65000 });
      assert.equal((await b.app.request("/ingest", json(late))).status, 200);
      const timer = setTimeout(() => ac.abort(), 10_000);
      const first = await it.next();
      clearTimeout(timer);
      assert.equal(first.value?.id, late.id);
      ac.abort();
      await it.return(undefined);

      const sql = connect(url, 1);
      try {
        const [{ n, d }] = await sql`SELECT count(*)::int AS n, count(DISTINCT id)::int AS d FROM events`;
        assert.equal(n, d, "no id stored twice");
        const ids = new Set((await sql`SELECT id FROM events`).map((r) => String(r.id)));
        const lost = [...acked].filter((id) => !ids.has(id));
        assert.deepEqual(lost, [], "every acknowledged event is stored");
      } finally {
        await sql.end();
      }
    });
  },
});
