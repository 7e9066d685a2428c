import assert from "node:assert/strict";
import { utf8Length } from "./utf8.ts";

Deno.test("utf8Length: the byte length TextEncoder gives, without encoding", () => {
  const enc = new TextEncoder();
  for (
    const s of ["", "abc", "é", "€uro", "😀", "a😀b", "\ud800", "x\udc00y", "ü".repeat(100) + "😀".repeat(3)]
  ) {
    assert.equal(utf8Length(s), enc.encode(s).length, JSON.stringify(s));
  }
});
