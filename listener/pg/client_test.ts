import assert from "node:assert/strict";
import { isConnectionNoise, isWriteAfterClose } from "./client.ts";

const stackOf = (message: string, frames: string[]) => {
  const e = new Error(message);
  e.stack = `Error: ${message}\n${frames.map((f) => `    at ${f}`).join("\n")}`;
  return e;
};
const PG = "file:///root/.cache/deno/npm/registry.npmjs.org/postgres/3.4.9/src";

Deno.test("pg client guard: the write-after-close crash in both of node:net's wordings, nothing else", () => {
  const typeError = new TypeError("Cannot read properties of null (reading 'write')");
  typeError.stack = `TypeError: x\n    at Immediate.nextWrite (${PG}/connection.js:255:22)`;
  assert.ok(isWriteAfterClose(typeError));
  assert.ok(
    isWriteAfterClose(
      stackOf("This socket has been ended by the other party", [
        "Socket._writeAfterFIN [as write] (ext:deno_node/net.ts:1:1)",
        `Immediate.nextWrite (${PG}/connection.js:255:22)`,
      ]),
    ),
  );
  assert.ok(!isWriteAfterClose(stackOf("This socket has been ended by the other party", ["mine.ts:1:1"])));
  assert.ok(!isWriteAfterClose(new Error("reading 'write'")));
});

Deno.test("pg client guard: connection-level rejections of a restarting database, not other errors", () => {
  const destroyed = Object.assign(new Error("write CONNECTION_DESTROYED 127.0.0.1:5432"), {
    code: "CONNECTION_DESTROYED",
  });
  assert.ok(isConnectionNoise(destroyed));
  assert.ok(isConnectionNoise(Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" })));
  assert.ok(isConnectionNoise(new Error("read ECONNRESET")));
  assert.ok(isConnectionNoise(Object.assign(new Error("x"), { code: "EPIPE" })));
  assert.ok(!isConnectionNoise(Object.assign(new Error("relation does not exist"), { code: "42P01" })));
  assert.ok(!isConnectionNoise(new TypeError("x is undefined")));
  assert.ok(!isConnectionNoise("ECONNRESET"));
});
