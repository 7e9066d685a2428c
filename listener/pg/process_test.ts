import assert from "node:assert/strict";
import { startListener } from "../../testing/listener.ts";
import { uuidv7 } from "../../events/id.ts";
import { sampleEvent, withTempDir } from "../testing.ts";
import { freshDatabase, json, postgresSkipReason, startPostgres } from "./testing.ts";

const skip = postgresSkipReason();
if (skip) console.log(`pg/process_test.ts: skipped: ${skip}`);

Deno.test({
  name: "listener process with STORE_URL: two replicas share one database; no log file is written",
  ignore: skip !== undefined,
  async fn() {
    await using pg = await startPostgres();
    const url = await freshDatabase(pg);
    await withTempDir(async (dir) => {
      const logPath = `${dir}/unused.log`;
      const a = await startListener(logPath, { env: { STORE_URL: url } });
      try {
        const b = await startListener(logPath, { args: ["--store-url", url] });
        try {
          const e = sampleEvent({ id: uuidv7() });
          const res = await fetch(`${a.url}/ingest`, json([e, e]));
          assert.deepEqual((await res.json()).duplicates, 1);
          const again = await (await fetch(`${b.url}/ingest`, json(e))).json();
          assert.deepEqual([again.stored, again.duplicates], [0, 1]);
          const { events } = await (await fetch(`${b.url}/events`)).json();
          assert.deepEqual(events.map((x: { id: string }) => x.id), [e.id]);
          const metrics = await (await fetch(`${a.url}/metrics`)).text();
          assert.match(metrics, /portwatch_listener_pg_commit_duration_seconds_count\{result="ok"\} [1-9]/);
        } finally {
          await b.stop();
        }
      } finally {
        await a.stop();
      }
      await assert.rejects(() => Deno.stat(logPath));
    });
  },
});
