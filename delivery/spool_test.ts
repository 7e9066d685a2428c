import assert from "node:assert/strict";
import { Spool, SpoolFullError } from "./spool.ts";
import type { PortEvent } from "../events/schema.ts";
import { portEventFixture } from "../testing/events.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "portwatch-spool-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

let n = 0;
function ev(over: Record<string, unknown> = {}): PortEvent {
  n++;
  return portEventFixture(1000 + (n % 60000), { id: `spool-test-${String(n).padStart(6, "0")}`, ...over });
}

const ids = (events: PortEvent[]) => events.map((e) => e.id);

Deno.test("spool: append, read in order, ack, drained compaction", async () => {
  await withDir(async (dir) => {
    const spool = await Spool.open({ dir, recordMaxEvents: 2 });
    assert.equal(await spool.read(), undefined);
    const a = [ev(), ev(), ev()];
    const b = [ev()];
    await spool.append(a);
    await spool.append(b);
    assert.equal(spool.pendingEvents, 4);
    assert.equal(spool.pendingRecords, 3, "3 events at 2 per record, then 1");
    const r1 = await spool.read(2);
    assert.ok(r1);
    assert.deepEqual(ids(r1.events), ids(a.slice(0, 2)));
    assert.deepEqual(r1.events[0], a[0], "events come back as they went in");
    await spool.ack(r1.end);
    assert.equal(spool.pendingEvents, 2);
    const r2 = await spool.read(10);
    assert.ok(r2);
    assert.deepEqual(ids(r2.events), [a[2].id, b[0].id]);
    assert.deepEqual(r2.records.map((r) => r.count), [1, 1]);
    await assert.rejects(spool.ack(r2.records[0].end - 1), /record boundary/);
    await spool.ack(r2.end);
    assert.equal(spool.pendingEvents, 0);
    assert.equal(spool.fileBytes, 0, "a drained spool is compacted to nothing");
    const files = [];
    for await (const e of Deno.readDir(dir)) files.push(e.name);
    assert.deepEqual(files.sort(), ["offset.json", "spool-1.ndjson"]);
    await spool.append([ev()]);
    assert.equal(spool.pendingEvents, 1);
    await spool.close();
  });
});

Deno.test("spool: reopening resumes after the acknowledged offset", async () => {
  await withDir(async (dir) => {
    const first = await Spool.open({ dir });
    const batches = [[ev(), ev()], [ev()], [ev(), ev(), ev()]];
    for (const b of batches) await first.append(b);
    const r = await first.read(2);
    assert.ok(r);
    await first.ack(r.end);
    await first.close();
    await assert.rejects(first.append([ev()]), /closed/);

    const second = await Spool.open({ dir });
    assert.equal(second.pendingEvents, 4);
    assert.equal(second.recovery.movedBytes, 0);
    const rest = await second.read(100, 1 << 20);
    assert.ok(rest);
    assert.deepEqual(ids(rest.events), ids([...batches[1], ...batches[2]]));
    await second.close();
  });
});

Deno.test("spool: a torn tail is moved aside and the good records stay", async () => {
  await withDir(async (dir) => {
    const spool = await Spool.open({ dir });
    const good = [ev(), ev()];
    await spool.append(good);
    await spool.close();
    const path = `${dir}/spool-0.ndjson`;
    const clean = await Deno.readFile(path);
    // a crash mid-append: half a record, no newline
    await Deno.writeTextFile(path, `0badc0de 2 [{"id":"x"},{"id"`, { append: true });
    const reopened = await Spool.open({ dir });
    assert.equal(reopened.pendingEvents, 2);
    assert.ok(reopened.recovery.movedBytes > 0);
    assert.equal(reopened.recovery.corruptPath, `${dir}/spool-0.corrupt`);
    assert.match(await Deno.readTextFile(`${dir}/spool-0.corrupt`), /^0badc0de 2/);
    assert.deepEqual(await Deno.readFile(path), clean, "the data file is cut back to the last good record");
    const more = [ev()];
    await reopened.append(more);
    const r = await reopened.read(10, 1 << 20);
    assert.ok(r);
    assert.deepEqual(ids(r.events), ids([...good, ...more]));
    await reopened.close();

    // a complete line whose checksum is wrong (e.g. zero-filled blocks after a power cut) is torn too
    await Deno.writeFile(path, new Uint8Array(64), { append: true });
    await Deno.writeTextFile(path, "\n", { append: true });
    const again = await Spool.open({ dir });
    assert.equal(again.pendingEvents, 3);
    assert.equal(again.recovery.movedBytes, 65);
    await again.close();
  });
});

Deno.test("spool: an interrupted compaction and a lost offset file never break it", async () => {
  await withDir(async (dir) => {
    const spool = await Spool.open({ dir });
    await spool.append([ev(), ev()]);
    await spool.close();
    await Deno.writeTextFile(`${dir}/spool-1.ndjson`, "half-copied"); // compaction crashed before the switch
    const reopened = await Spool.open({ dir });
    assert.deepEqual(reopened.recovery.removed, [`${dir}/spool-1.ndjson`]);
    assert.equal(reopened.pendingEvents, 2);
    await reopened.close();
    await Deno.writeTextFile(`${dir}/offset.json`, "{garbage");
    const third = await Spool.open({ dir });
    assert.equal(third.pendingEvents, 2, "an unreadable offset redelivers from the start (ids dedupe)");
    await third.close();
  });
});

Deno.test("spool: a large acknowledged prefix is compacted, pending records kept", async () => {
  await withDir(async (dir) => {
    const spool = await Spool.open({ dir, recordMaxEvents: 1, compactMinBytes: 1 });
    const all = [ev(), ev(), ev(), ev()];
    await spool.append(all);
    const before = spool.fileBytes;
    const r = await spool.read(2);
    assert.ok(r);
    await spool.ack(r.end);
    assert.ok(spool.fileBytes < before, "prefix >= pending: compacted");
    const rest = await spool.read(10);
    assert.ok(rest);
    assert.deepEqual(ids(rest.events), ids(all.slice(2)));
    await spool.close();
    const reopened = await Spool.open({ dir });
    assert.equal(reopened.pendingEvents, 2);
    await reopened.close();
  });
});

Deno.test("spool: full refuses loudly, writes nothing, and frees space by compacting", async () => {
  await withDir(async (dir) => {
    const spool = await Spool.open({ dir, maxBytes: 1200, recordMaxEvents: 1 });
    const first = [ev(), ev(), ev()];
    await spool.append(first);
    const used = spool.fileBytes;
    const err = await spool.append([ev(), ev(), ev()]).catch((e) => e);
    assert.ok(err instanceof SpoolFullError, String(err));
    assert.match(err.message, /is full: .*SPOOL_MAX_BYTES.*NOT stored/);
    assert.equal(spool.fileBytes, used, "nothing written");
    assert.equal(spool.pendingEvents, 3);
    const r = await spool.read(2);
    assert.ok(r);
    await spool.ack(r.end);
    await spool.append([ev(), ev()]); // fits once the acknowledged prefix is compacted away
    assert.equal(spool.pendingEvents, 3);
    assert.ok(spool.fileBytes <= 1200);
    await spool.close();
  });
});

Deno.test("spool: records respect the byte limit; a single huge event gets its own record", async () => {
  await withDir(async (dir) => {
    const spool = await Spool.open({ dir, recordMaxBytes: 1024 });
    const big = ev({ note: "x".repeat(4000) });
    await spool.append([ev(), ev(), big, ev()]);
    assert.equal(spool.pendingRecords, 3);
    const r = await spool.read(100, 1024);
    assert.ok(r);
    assert.equal(r.events.length, 2);
    await spool.ack(r.end);
    const r2 = await spool.read(100, 1024);
    assert.ok(r2);
    assert.deepEqual(ids(r2.events), [big.id]);
    await spool.close();
  });
});

Deno.test("spool: dead letters keep the event and the reason", async () => {
  await withDir(async (dir) => {
    const spool = await Spool.open({ dir });
    const e = ev();
    await spool.deadLetter([e], { status: 422, error: "port: too big" });
    const lines = (await Deno.readTextFile(spool.deadLetterPath)).trim().split("\n").map((l) =>
      JSON.parse(l)
    );
    assert.equal(lines.length, 1);
    assert.equal(lines[0].status, 422);
    assert.equal(lines[0].error, "port: too big");
    assert.deepEqual(lines[0].event, e);
    await spool.close();
  });
});
