import assert from "node:assert/strict";
import { type Record_, toRecords, type Validated, validateRecords } from "./validate.ts";
import { parseBody } from "./parse_body.ts";

const TS = "2026-11-25T08:00:00.000Z";
const EVENT = { event: "open", port: 5000, pids: [123], source: "polling", proto: "tcp", host: "h1" };

/** The records of one NDJSON body, with the texts parseBody keeps. */
function ndjson(body: string) {
  const { items, texts } = parseBody(body, "application/x-ndjson");
  return withPrepared(validateRecords(items, TS, texts));
}

/** Each record with its prepared line and fresh-id flag. */
function withPrepared({ records, prepared }: Validated) {
  return records.map((r: Record_, i) => ({
    ...r,
    line: prepared.lines[i],
    fresh: prepared.freshIds[i] === 1,
    r,
  }));
}

Deno.test("toRecords: a compact event is written through, ts (and a new id) spliced in front", () => {
  const [r] = ndjson(JSON.stringify(EVENT) + "\n");
  assert.equal(typeof r.id, "string");
  assert.equal(r.fresh, true);
  // Exactly the line the slow path (JSON.stringify of ts, id, then the fields) would write.
  assert.equal(r.line, JSON.stringify({ ts: TS, id: r.id, ...EVENT }));
  assert.equal(r.ts, TS);
});

Deno.test("toRecords: a client id that comes first is written through and not marked fresh", () => {
  const ev = { id: "client-1", ...EVENT };
  const [r] = ndjson(JSON.stringify(ev) + "\r\n"); // CRLF: the \r is not part of the text
  assert.equal(r.line, JSON.stringify({ ts: TS, ...ev }));
  assert.equal(r.fresh, false);
  assert.equal(r.id, "client-1");
});

Deno.test("toRecords: what cannot be written through as it is takes the slow path, with the same result", () => {
  const cases = [
    JSON.stringify({ ...EVENT, id: "late-id" }), // id not first
    JSON.stringify(EVENT, null, 1).replaceAll("\n", ""), // not compact
    JSON.stringify({ ...EVENT, container_name: "my app" }), // a space in a string: not told apart, slow
    JSON.stringify({ id: "a", ...EVENT, extra: 1 }).slice(0, -1) + ',"id":"b"}', // a repeated key
    JSON.stringify({ id: 'q"uote', ...EVENT }), // an id that needs escaping
    JSON.stringify({ ...EVENT, ts: "2026-01-01T00:00:00Z" }), // a client ts becomes client_ts
    JSON.stringify({ message: "hello" }), // a message, not an event
  ];
  for (const text of cases) {
    const [r] = ndjson(text + "\n");
    const item = JSON.parse(text);
    const expected = toRecords([item], TS)[0];
    if (text.includes('"id":"a"')) {
      // A repeated key: JSON.parse keeps the last; so does the stored line.
      assert.equal(r.line, undefined, text);
      assert.equal(r.id, "b");
      continue;
    }
    if (text.includes('q\\"uote')) {
      // Its text does match JSON.stringify, so it may be written through; either way the line is the same.
      assert.equal(r.line ?? JSON.stringify(r.r), JSON.stringify(expected), text);
      continue;
    }
    assert.equal(r.line, undefined, text);
    if (item.id === undefined) expected.id = r.id;
    assert.equal(JSON.stringify(r.r), JSON.stringify(expected), text);
  }
});

Deno.test("toRecords: a single JSON object body is written through too; arrays are not", () => {
  const one = parseBody(JSON.stringify(EVENT), "application/json");
  const [r] = withPrepared(validateRecords(one.items, TS, one.texts));
  assert.equal(r.line, JSON.stringify({ ts: TS, id: r.id, ...EVENT }));
  const many = parseBody(JSON.stringify([EVENT, EVENT]), "application/json");
  assert.equal(many.texts, undefined);
  for (const x of withPrepared(validateRecords(many.items, TS, many.texts))) assert.equal(x.line, undefined);
});
