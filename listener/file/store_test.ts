import assert from "node:assert/strict";
import { EventStore } from "./store.ts";
import { toRecords } from "../validate.ts";
import { sampleEvent, storeOptions, withTempDir } from "../testing.ts";
import { logFiles } from "./log_reader.ts";

const records = (evs: Record<string, unknown>[]) => toRecords(evs, new Date().toISOString());

Deno.test("EventStore: after a restart, stored ids are still duplicates and /ports state is rebuilt", async () => {
  await withTempDir(async (dir) => {
    const opts = storeOptions(dir);
    const evs = [
      sampleEvent({ port: 1 }),
      sampleEvent({ port: 2 }),
      sampleEvent({ port: 1, event: "close" }),
    ];
    const a = await EventStore.open(opts);
    await a.store.ingest(records(evs));
    await a.store.close();
    const b = await EventStore.open(opts);
    assert.equal(b.report.indexed, 3);
    const again = await b.store.ingest(records(evs));
    assert.deepEqual([again.stored, again.duplicates], [0, 3]);
    assert.deepEqual(b.store.ports.list().map((p) => p.port), [2]);
    await b.store.close();
  });
});

Deno.test("EventStore: after a restart, a changed port is rebuilt with its new holders, open since its open", async () => {
  await withTempDir(async (dir) => {
    const opts = storeOptions(dir);
    const open = sampleEvent({ port: 3, observed_at: "2026-11-25T08:00:01.000Z", pids: [10] });
    const change = sampleEvent({
      port: 3,
      event: "change",
      observed_at: "2026-11-25T08:00:02.000Z",
      pids: [11],
      last_pids: [10],
      addrs: ["::"],
      last_addrs: ["0.0.0.0"],
    });
    const a = await EventStore.open(opts);
    await a.store.ingest(records([open, change]));
    const live = a.store.ports.list();
    await a.store.close();
    const b = await EventStore.open(opts);
    try {
      const rebuilt = b.store.ports.list();
      assert.deepEqual(rebuilt, live);
      assert.deepEqual(
        rebuilt.map((p) => [p.port, p.pids, p.addrs, p.since, p.event_id]),
        [[3, [11], ["::"], "2026-11-25T08:00:01.000Z", change.id]],
      );
    } finally {
      await b.store.close();
    }
  });
});

Deno.test("EventStore: queries reach into rotated files beyond the in-memory window", async () => {
  await withTempDir(async (dir) => {
    const opts = storeOptions(dir, { maxBytes: 4096, keep: 50, recentSize: 10 });
    const { store } = await EventStore.open(opts);
    for (let i = 0; i < 100; i++) await store.ingest(records([sampleEvent({ port: 1000 + i })]));
    assert.ok((await logFiles(opts.path)).length > 3);
    const oldest = await store.query({}, 5, "asc");
    assert.deepEqual(oldest.map((r) => r.port), [1000, 1001, 1002, 1003, 1004]);
    const newest = await store.query({}, 3, "desc");
    assert.deepEqual(newest.map((r) => r.port), [1099, 1098, 1097]);
    const some = await store.query({ ports: { has: (p: number) => p % 25 === 0, size: 4 } }, 100, "desc");
    assert.deepEqual(some.map((r) => r.port), [1075, 1050, 1025, 1000]);
    await store.close();
  });
});

Deno.test("EventStore.replayAfter: from memory, from the files, and everything for an unknown id", async () => {
  await withTempDir(async (dir) => {
    const { store } = await EventStore.open(storeOptions(dir, { recentSize: 5 }));
    const evs = Array.from({ length: 20 }, (_, i) => sampleEvent({ port: 2000 + i }));
    await store.ingest(records(evs));
    const after = async (id: string) => {
      const out: number[] = [];
      for await (const e of store.replayAfter(id)) out.push(e.record.port as number);
      return out;
    };
    assert.deepEqual(await after(evs[17].id as string), [2018, 2019]); // in memory
    assert.deepEqual(await after(evs[2].id as string), evs.slice(3).map((e) => e.port)); // from the files
    assert.equal((await after("never-stored")).length, 20);
    await store.close();
  });
});
