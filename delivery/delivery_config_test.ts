import assert from "node:assert/strict";
import { defaultSpoolDir, deliveryConfigFromEnv, sinkFromEnv } from "./delivery_config.ts";
import { ConfigError, envOf } from "../infra/env.ts";
import { StdoutSink } from "./sink.ts";
import { HttpSink } from "./http_sink.ts";

Deno.test("deliveryConfigFromEnv: defaults and values", () => {
  assert.deepEqual(deliveryConfigFromEnv(envOf({})), {
    url: undefined,
    token: undefined,
    spoolDir: undefined,
    spoolMaxBytes: 256 * 1024 * 1024,
    timeoutMs: 2_000,
  });
  const c = deliveryConfigFromEnv(envOf({
    LISTENER_URL: "http://listener:8080",
    LISTENER_TOKEN: " s3cret ",
    SPOOL_PATH: "/data/spool",
    SPOOL_MAX_BYTES: "64MiB",
    DELIVERY_TIMEOUT: "0.5",
  }));
  assert.equal(c.url?.href, "http://listener:8080/");
  assert.equal(c.token, "s3cret");
  assert.equal(c.spoolDir, "/data/spool");
  assert.equal(c.spoolMaxBytes, 64 * 1024 * 1024);
  assert.equal(c.timeoutMs, 500);
});

Deno.test("deliveryConfigFromEnv: a bad value names the variable, the value and what is accepted", () => {
  const cases: [string, string, RegExp][] = [
    ["LISTENER_URL", "listener:8080", /http:\/\//],
    ["LISTENER_URL", "ftp://x/", /http:\/\//],
    ["SPOOL_MAX_BYTES", "lots", /size in bytes of at least 65536/],
    ["SPOOL_MAX_BYTES", "1K", /at least 65536/],
    ["DELIVERY_TIMEOUT", "0", /seconds > 0/],
    ["DELIVERY_TIMEOUT", "2s", /seconds > 0/],
    ["DELIVERY_TIMEOUT", "600", /at most 300/],
  ];
  for (const [name, value, accepted] of cases) {
    assert.throws(
      () => deliveryConfigFromEnv(envOf({ [name]: value })),
      (e: unknown) =>
        e instanceof ConfigError && e.setting === name && e.value === value && accepted.test(e.message),
      `${name}=${value}`,
    );
  }
});

Deno.test("sinkFromEnv: stdout without LISTENER_URL, HttpSink with it", async () => {
  assert.ok(await sinkFromEnv(envOf({})) instanceof StdoutSink);
  const dir = await Deno.makeTempDir({ prefix: "portwatch-cfg-" });
  try {
    const sink = await sinkFromEnv(
      envOf({ LISTENER_URL: "http://127.0.0.1:9/ingest", SPOOL_PATH: `${dir}/s` }),
    );
    assert.ok(sink instanceof HttpSink);
    assert.equal(sink.url.href, "http://127.0.0.1:9/ingest");
    assert.equal(sink.spool.dir, `${dir}/s`);
    await sink.close();
    await assert.rejects(sinkFromEnv(envOf({ LISTENER_URL: "nope" })), ConfigError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("defaultSpoolDir: the first writable candidate", async () => {
  const dir = await Deno.makeTempDir({ prefix: "portwatch-cfg-" });
  try {
    await Deno.writeTextFile(`${dir}/file`, "");
    // a path under a regular file can never be created: falls back to the next candidate
    assert.equal(await defaultSpoolDir([`${dir}/file/spool`, `${dir}/spool`]), `${dir}/spool`);
    await assert.rejects(
      defaultSpoolDir([`${dir}/file/spool`]),
      /no writable spool directory \(set SPOOL_PATH\)/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
