import assert from "node:assert/strict";
import {
  ConfigError,
  envOf,
  firstSet,
  parseBool,
  parseBytes,
  parseInteger,
  parsePort,
  parseSecondsMs,
  parseUrl,
} from "./env.ts";

function rejects(fn: () => unknown, name: string, value: string, accepted: RegExp) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.equal(e.setting, name);
    assert.equal(e.value, value);
    assert.match(e.accepted, accepted);
    assert.ok(e.message.includes(name) && e.message.includes(JSON.stringify(value)), e.message);
    return true;
  });
}

Deno.test("parseSecondsMs: fractions, and clear errors naming variable and value", () => {
  assert.equal(parseSecondsMs("SCAN_INTERVAL", "1"), 1000);
  assert.equal(parseSecondsMs("BURST_DELAY", "0.02"), 20);
  assert.equal(parseSecondsMs("BURST_DELAY", ".5"), 500);
  assert.equal(parseSecondsMs("X", "0", { allowZero: true }), 0);
  rejects(() => parseSecondsMs("SCAN_INTERVAL", "abc"), "SCAN_INTERVAL", "abc", /seconds/);
  rejects(() => parseSecondsMs("SCAN_INTERVAL", "0"), "SCAN_INTERVAL", "0", /> 0/);
  rejects(() => parseSecondsMs("SCAN_INTERVAL", "-1"), "SCAN_INTERVAL", "-1", /seconds/);
  rejects(() => parseSecondsMs("SCAN_INTERVAL", "1e3"), "SCAN_INTERVAL", "1e3", /seconds/);
});

Deno.test("parsePort and parseInteger: ranges", () => {
  assert.equal(parsePort("LISTENER_PORT", "8080"), 8080);
  assert.equal(parsePort("LISTENER_PORT", "0", true), 0);
  rejects(() => parsePort("LISTENER_PORT", "70000"), "LISTENER_PORT", "70000", /1 to 65535/);
  rejects(() => parsePort("LISTENER_PORT", "0"), "LISTENER_PORT", "0", /1 to 65535/);
  rejects(() => parseInteger("LOG_KEEP", "2.5", 1, 10), "LOG_KEEP", "2.5", /whole number from 1 to 10/);
});

Deno.test("parseBool accepts the usual spellings only", () => {
  for (const v of ["1", "true", "YES", "on"]) assert.equal(parseBool("USE_PROC", v), true);
  for (const v of ["0", "false", "No", "off"]) assert.equal(parseBool("USE_PROC", v), false);
  rejects(() => parseBool("USE_PROC", "maybe"), "USE_PROC", "maybe", /1, true/);
});

Deno.test("parseBytes: units", () => {
  assert.equal(parseBytes("S", "1048576"), 1048576);
  assert.equal(parseBytes("S", "512K"), 512 * 1024);
  assert.equal(parseBytes("S", "1MiB"), 1024 * 1024);
  assert.equal(parseBytes("S", "64MB"), 64_000_000);
  assert.equal(parseBytes("S", "1g"), 1024 ** 3);
  rejects(
    () => parseBytes("LISTENER_BODY_LIMIT", "1 parsec"),
    "LISTENER_BODY_LIMIT",
    "1 parsec",
    /size in bytes/,
  );
  rejects(() => parseBytes("LISTENER_BODY_LIMIT", "10", 1024), "LISTENER_BODY_LIMIT", "10", /at least 1024/);
});

Deno.test("parseUrl and firstSet (aliases)", () => {
  assert.equal(parseUrl("LISTENER_URL", "http://127.0.0.1:8080/ingest").port, "8080");
  rejects(() => parseUrl("LISTENER_URL", "ftp://x"), "LISTENER_URL", "ftp://x", /http/);
  rejects(() => parseUrl("LISTENER_URL", "not a url"), "LISTENER_URL", "not a url", /http/);
  const env = envOf({ WATCH_PORTS: " ", DESIRED_PORTS: "3000" });
  assert.deepEqual(firstSet(env, "WATCH_PORTS", "DESIRED_PORTS"), { name: "DESIRED_PORTS", value: "3000" });
  assert.equal(firstSet(env, "NOPE"), undefined);
});
