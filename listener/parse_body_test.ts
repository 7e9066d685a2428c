import assert from "node:assert/strict";
import { BodyError, parseBody } from "./parse_body.ts";
import { locateJsonError, scanJson } from "./json_error.ts";

Deno.test("parseBody: one object, an array, NDJSON with blank lines and CRLF", () => {
  assert.deepEqual(parseBody('{"a":1}', "application/json").items, [{ a: 1 }]);
  assert.deepEqual(parseBody('[{"a":1},{"a":2}]', "application/json; charset=utf-8").items, [{ a: 1 }, {
    a: 2,
  }]);
  const nd = parseBody('{"a":1}\r\n\n{"a":2}\n', "application/x-ndjson");
  assert.equal(nd.kind, "ndjson");
  assert.deepEqual(nd.items, [{ a: 1 }, { a: 2 }]);
});

Deno.test("parseBody: non-JSON text without a JSON content type is a message, as the seed stored it", () => {
  assert.deepEqual(parseBody("port 5000 opened", "text/plain").items, [{ message: "port 5000 opened" }]);
  assert.deepEqual(parseBody("hello", undefined).items, [{ message: "hello" }]);
  assert.deepEqual(parseBody("42", "application/json").items, [{ message: 42 }]);
  // JSON sent as text/plain (curl's default form type) is still read as JSON.
  assert.deepEqual(parseBody('{"a":1}', "application/x-www-form-urlencoded").items, [{ a: 1 }]);
});

Deno.test("parseBody: malformed JSON is a 400 naming the byte offset, line and column", () => {
  try {
    parseBody('{"port": 5000,\n "pids": [1,]}', "application/json");
    assert.fail("should throw");
  } catch (e) {
    assert.ok(e instanceof BodyError);
    assert.equal(e.status, 400);
    assert.equal(e.detail.byte_offset, 27);
    assert.equal(e.detail.line, 2);
    assert.match(e.message, /byte 27 \(line 2, column 13\)/);
  }
});

Deno.test("parseBody: NDJSON error names the line and the absolute byte offset (UTF-8)", () => {
  try {
    parseBody('{"name":"é"}\n{"a":tru}\n', "application/x-ndjson");
    assert.fail("should throw");
  } catch (e) {
    assert.ok(e instanceof BodyError);
    assert.equal(e.status, 400);
    assert.equal(e.detail.line, 2);
    // line 1 is 13 bytes ("é" is two) + "\n"; the error is the "}" where "e" belongs, offset 8 of line 2.
    assert.equal(e.detail.byte_offset, 14 + 8);
    assert.doesNotMatch(e.message, /is not valid JSON/);
  }
});

Deno.test("parseBody: empty bodies and non-object items are refused", () => {
  assert.throws(
    () => parseBody("  \n", "application/json"),
    (e: unknown) => e instanceof BodyError && e.status === 400,
  );
  assert.throws(
    () => parseBody('[{"a":1}, 3]', "application/json"),
    (e: unknown) => e instanceof BodyError && e.status === 422 && e.detail.index === 1,
  );
  assert.throws(
    () => parseBody('{"a":1}\n[1]\n', "application/x-ndjson"),
    (e: unknown) => e instanceof BodyError && e.status === 422 && e.detail.line === 2,
  );
});

Deno.test("scanJson finds the first bad character for errors V8 does not locate", () => {
  for (
    const [text, at] of [['{"a":tru}', 8], ["hello", 0], ['{"a":1} x', 8], ['{"a":"\\q"}', 7], ["[1,2", 4], [
      "",
      0,
    ]] as const
  ) {
    assert.equal(scanJson(text), at, text);
  }
  const loc = locateJsonError(
    '{"a":tru}',
    new SyntaxError(`Unexpected token '}', "{"a":tru}" is not valid JSON`),
  );
  assert.equal(loc.byteOffset, 8);
  assert.equal(loc.reason, "Unexpected token '}'");
});
