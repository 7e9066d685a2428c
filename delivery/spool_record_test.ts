import assert from "node:assert/strict";
import { checkRecord, crc32, encodeRecord, scanLines } from "./spool_record.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

Deno.test("crc32 matches the IEEE check value", () => {
  assert.equal(crc32(bytes("123456789")), 0xcbf43926);
});

Deno.test("encodeRecord/checkRecord: a record checks out with its count; any damage does not", () => {
  const line = encodeRecord(['{"port":1}', '{"port":2}']);
  assert.match(line, /^[0-9a-f]{8} 2 \[\{"port":1\},\{"port":2\}\]\n$/);
  const body = bytes(line.slice(0, -1));
  assert.equal(checkRecord(body), 2);
  for (let i = 0; i < body.length; i++) {
    const bad = body.slice();
    bad[i] ^= 0x01;
    assert.equal(checkRecord(bad), undefined, `byte ${i} flipped`);
  }
  assert.equal(checkRecord(body.subarray(0, body.length - 1)), undefined); // cut short
  assert.equal(checkRecord(bytes("garbage")), undefined);
  assert.equal(checkRecord(bytes(encodeRecord([]).slice(0, -1))), 0);
});

Deno.test("scanLines: complete lines with their offsets from a start, an unterminated tail as null", async () => {
  const path = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(path, "skip\nab\n\ncd\ntail");
    using file = await Deno.open(path);
    const got = [];
    for await (const l of scanLines(file, 5)) {
      got.push([l.start, l.end, l.line === null ? null : new TextDecoder().decode(l.line)]);
    }
    assert.deepEqual(got, [[5, 8, "ab"], [8, 9, ""], [9, 12, "cd"], [12, 16, null]]);
  } finally {
    await Deno.remove(path);
  }
});
