import assert from "node:assert/strict";
import { ConfigError, envOf } from "../infra/env.ts";
import { type ListenerConfig, loadConfig, USAGE } from "./config.ts";

const load = (env: Record<string, string>, args: string[] = []) =>
  loadConfig(args, envOf(env)) as ListenerConfig;

Deno.test("config: the file store by default; STORE_URL or --store-url selects PostgreSQL", () => {
  assert.equal(load({}).storeUrl, undefined);
  assert.equal(load({}).retentionDays, 0);
  assert.equal(
    load({ STORE_URL: "postgres://pw:secret@db:5432/portwatch" }).storeUrl,
    "postgres://pw:secret@db:5432/portwatch",
  );
  assert.equal(load({}, ["--store-url", "postgresql://db/portwatch"]).storeUrl, "postgresql://db/portwatch");
  assert.equal(load({ RETENTION_DAYS: "30" }).retentionDays, 30);
  assert.equal(load({}, ["--retention-days", "7"]).retentionDays, 7);
  assert.match(USAGE, /STORE_URL/);
  assert.match(USAGE, /RETENTION_DAYS/);
});

Deno.test("config: a bad STORE_URL names the setting and what is accepted, without the password", () => {
  for (
    const bad of [
      "mysql://u:secret@db/x",
      "not a url",
      "postgres:///nohost",
      "postgres://u:secret@db:99999/x",
    ]
  ) {
    assert.throws(() => load({ STORE_URL: bad }), (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.equal(e.setting, "STORE_URL");
      assert.match(e.message, /PostgreSQL URL such as postgres:\/\//);
      assert.doesNotMatch(e.message, /secret/);
      return true;
    });
  }
  assert.throws(
    () => load({ RETENTION_DAYS: "-1" }),
    /RETENTION_DAYS="-1" is not valid: expected a whole number/,
  );
  assert.throws(() => load({}, ["--store-url", "http://x"]), /--store-url/);
});
