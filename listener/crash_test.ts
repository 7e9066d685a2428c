import assert from "node:assert/strict";
import { startListener } from "../testing/listener.ts";
import { waitUntil } from "../infra/wait.ts";
import { sampleEvent, withTempDir } from "./testing.ts";

/**
 * The durability promise: under concurrent load, kill -9 the listener; after a restart every event whose POST
 * got a 2xx is in the log exactly once, the log parses line by line, and retrying everything stores nothing
 * twice.
 */
Deno.test("crash: kill -9 under concurrent load loses no acknowledged event and duplicates none", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/portwatcher.log`;
    const l = await startListener(path, { env: { LISTENER_FSYNC: "1" } });
    const acked = new Set<string>();
    const sent: Record<string, unknown>[][] = [];
    let stop = false;
    const worker = async (w: number) => {
      for (let i = 0; !stop; i++) {
        const batch = Array.from({ length: 1 + (i % 3) }, () => sampleEvent({ port: 1000 + w }));
        sent.push(batch);
        try {
          const res = await fetch(`${l.url}/ingest`, {
            method: "POST",
            headers: { "content-type": "application/x-ndjson" },
            body: batch.map((e) => JSON.stringify(e)).join("\n"),
          });
          if (res.status === 200) { for (const e of batch) acked.add(e.id as string); }
          else await res.body?.cancel();
        } catch {
          return; // the listener is gone: this batch was not acknowledged
        }
      }
    };
    const workers = Array.from({ length: 16 }, (_, w) => worker(w));
    await waitUntil("300 acknowledged events", () => acked.size >= 300, 20_000);
    await l.kill9();
    stop = true;
    await Promise.all(workers);

    const text = await Deno.readTextFile(path);
    const lines = text.split("\n");
    assert.equal(lines.pop(), "", "the log ends with a newline");
    const ids = lines.map((line, i) => {
      try {
        return JSON.parse(line).id as string;
      } catch {
        throw new Error(`line ${i + 1} is not JSON: ${line.slice(0, 80)}`);
      }
    });
    const counts = new Map<string, number>();
    for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
    for (const id of acked) assert.equal(counts.get(id), 1, `acknowledged ${id} is in the log once`);
    for (const [id, n] of counts) assert.equal(n, 1, `${id} is in the log ${n} times`);

    // Restart and retry every batch ever sent, as watchers with a spool would: nothing is stored twice.
    const l2 = await startListener(path, { env: { LISTENER_FSYNC: "1" } });
    try {
      for (const batch of sent) {
        const res = await fetch(`${l2.url}/ingest`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(batch),
        });
        assert.equal(res.status, 200);
        await res.body?.cancel();
      }
    } finally {
      await l2.stop();
    }
    const after = (await Deno.readTextFile(path)).split("\n").filter((x) => x).map((x) => JSON.parse(x).id);
    assert.equal(new Set(after).size, after.length, "no id twice after the retries");
    assert.equal(after.length, new Set(sent.flat().map((e) => e.id)).size, "every event sent is stored once");
    console.log(
      `acknowledged before the crash: ${acked.size}; in the log then: ${ids.length}; after: ${after.length}`,
    );
  });
});
