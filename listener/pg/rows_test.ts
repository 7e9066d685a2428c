import assert from "node:assert/strict";
import type { Record_ } from "../validate.ts";
import { eventColumns, eventRow, lineOf, NULL, openPortOf, portRows, SEP } from "./rows.ts";

const rec = (over: Record<string, unknown>): Record_ => ({
  ts: "2026-11-25T08:00:00.000Z",
  id: crypto.randomUUID(),
  event: "open",
  port: 80,
  proto: "tcp",
  host: "h",
  container_id: "c1",
  netns: 1,
  ...over,
});

Deno.test("rows: lines keep ts and id first; typed copies drop what PostgreSQL text cannot hold", () => {
  const r = { event: "open", port: 1, id: "x", ts: "2026-11-25T08:00:00.000Z" } as Record_;
  assert.match(lineOf(r), /^\{"ts":"2026-11-25T08:00:00.000Z","id":"x","event":"open"/);
  const row = eventRow(rec({ host: "a\u0000b\u001ec", container_name: "\ud800x" }), "{}");
  assert.equal(row.host, "abc");
  assert.equal(row.container_name, "\ufffdx");
  const cols = eventColumns([row, eventRow({ ts: row.ts, id: "m", message: "hi" }, '{"message":"hi"}')]);
  assert.equal(cols.length, 10);
  assert.deepEqual(cols[3].split(SEP), ["80", NULL]);
  assert.equal(cols[9], '{}\n{"message":"hi"}');
});

Deno.test("rows: one port update per port, the newest event, since from the trailing run of opens", () => {
  const at = (s: number) => `2026-11-25T08:00:0${s}.000Z`;
  const updates = portRows([
    rec({ observed_at: at(3), id: "c" }),
    rec({ observed_at: at(1), id: "a" }),
    rec({ observed_at: at(2), id: "b", event: "close" }),
    rec({ observed_at: at(4), id: "d", port: 81 }),
    { ts: at(5), id: "m", message: "not a port event" },
  ]);
  assert.equal(updates.length, 2);
  const [p80, p81] = updates;
  assert.deepEqual([p80.port, p80.open, p80.event_id, p80.since, p80.reopened], [80, true, "c", at(3), true]);
  assert.deepEqual([p81.port, p81.open, p81.since, p81.reopened], [81, true, at(4), false]);
  assert.equal(JSON.parse(p80.entry).event_id, "c");
  const [closed] = portRows([rec({ observed_at: at(1), id: "e", event: "close" })]);
  assert.deepEqual([closed.open, closed.entry], [false, ""]);
});

Deno.test("rows: an open port's entry keeps image and compose labels; entries older than them read as null", () => {
  const [row] = portRows([
    rec({ image: "debian:bookworm", compose_project: "portwatch", compose_service: "portwatcher" }),
  ]);
  const open = openPortOf(row.entry, row.since);
  assert.deepEqual([open.image, open.compose_project, open.compose_service], [
    "debian:bookworm",
    "portwatch",
    "portwatcher",
  ]);
  const { image: _i, compose_project: _p, compose_service: _s, ...old } = JSON.parse(row.entry);
  const before = openPortOf(JSON.stringify(old), row.since);
  assert.deepEqual([before.image, before.compose_project, before.compose_service], [null, null, null]);
});

Deno.test("rows: a change keeps the port open with its holders; it extends the trailing run of opens", () => {
  const at = (s: number) => `2026-11-25T08:00:0${s}.000Z`;
  const [p80, p81, p82] = portRows([
    rec({ observed_at: at(1), id: "a" }),
    rec({ observed_at: at(2), id: "b", event: "change", pids: [2], last_pids: [1], addrs: ["::"] }),
    rec({ port: 81, observed_at: at(3), id: "c", event: "change", pids: [3] }),
    rec({ port: 82, observed_at: at(1), id: "d" }),
    rec({ port: 82, observed_at: at(2), id: "e", event: "close" }),
    rec({ port: 82, observed_at: at(3), id: "f", event: "change", pids: [4] }),
  ]);
  assert.deepEqual([p80.open, p80.event_id, p80.since, p80.reopened], [true, "b", at(1), false]);
  assert.deepEqual([JSON.parse(p80.entry).pids, JSON.parse(p80.entry).addrs], [[2], ["::"]]);
  // Alone in its batch: open since the change, unless the stored row is open already (the upsert keeps it).
  assert.deepEqual([p81.open, p81.since, p81.reopened], [true, at(3), false]);
  // Closed, then changed within the batch: open again since the change.
  assert.deepEqual([p82.open, p82.since, p82.reopened, JSON.parse(p82.entry).pids], [true, at(3), true, [4]]);
  assert.equal(openPortOf(p80.entry, p80.since).since, at(1));
});
