import assert from "node:assert/strict";
import { readLines } from "./lines.ts";

Deno.test("readLines: lines across chunk boundaries, CRLF, split UTF-8, no final newline", async () => {
  const text = "a\r\nbé\n\nlast ✓";
  const bytes = new TextEncoder().encode(text);
  for (let cut = 0; cut <= bytes.length; cut++) {
    const stream = ReadableStream.from([bytes.slice(0, cut), bytes.slice(cut)]);
    const got: string[] = [];
    for await (const l of readLines(stream)) got.push(l);
    assert.deepEqual(got, ["a", "bé", "", "last ✓"], `cut at ${cut}`);
  }
});
