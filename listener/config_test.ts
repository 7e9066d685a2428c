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

Deno.test("config: ALERTMANAGER_URL, ALERT_WEBHOOK_URL and ALERT_QUEUE_DIR, with a policy", () => {
  const policy = { POLICY_PATH: "/etc/portwatch/policy.yaml" };
  assert.equal(load({}).alertmanagerUrl, undefined);
  assert.equal(load({}).alertWebhookUrl, undefined);
  assert.equal(load({}).alertQueueDir, undefined);
  assert.equal(
    load({ ...policy, ALERTMANAGER_URL: "http://127.0.0.1:9093/" }).alertmanagerUrl,
    "http://127.0.0.1:9093",
  );
  assert.equal(
    load({ ...policy, ALERTMANAGER_URL: "https://am.example.com/prefix" }).alertmanagerUrl,
    "https://am.example.com/prefix",
  );
  assert.equal(
    load({ ...policy, ALERT_WEBHOOK_URL: "https://hooks.example.com/pw?x=1" }).alertWebhookUrl,
    "https://hooks.example.com/pw?x=1",
  );
  assert.equal(
    load({ ...policy, ALERT_QUEUE_DIR: "/var/lib/pw/alerts" }).alertQueueDir,
    "/var/lib/pw/alerts",
  );
  assert.equal(load({}, ["--policy", "p.yaml"]).policyPath, "p.yaml");
  assert.equal(
    load({ ALERTMANAGER_URL: "http://am:9093" }, ["--policy", "p.yaml"]).alertmanagerUrl,
    "http://am:9093",
  );
  for (const name of ["ALERTMANAGER_URL", "ALERT_WEBHOOK_URL", "ALERT_QUEUE_DIR"]) {
    assert.match(USAGE, new RegExp(name));
  }
});

Deno.test("config: alert targets without a policy, or bad alert URLs, are refused with the reason", () => {
  for (const name of ["ALERTMANAGER_URL", "ALERT_WEBHOOK_URL"]) {
    assert.throws(() => load({ [name]: "http://u:secret@127.0.0.1:9093" }), (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.equal(e.setting, name);
      assert.match(e.message, /only together with POLICY_PATH \(--policy\)/);
      assert.doesNotMatch(e.message, /secret/);
      return true;
    });
  }
  const policy = { POLICY_PATH: "p.yaml" };
  for (
    const [bad, why] of [
      ["127.0.0.1:9093", /base URL, http:\/\/ or https:\/\//],
      ["ftp://am:9093", /base URL/],
      ["http://am:9093/api/v2/alerts", /not the API's path/],
      ["http://am:9093/?x=1", /without a query/],
    ] as const
  ) {
    assert.throws(() => load({ ...policy, ALERTMANAGER_URL: bad }), (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.equal(e.setting, "ALERTMANAGER_URL");
      assert.match(e.message, why);
      assert.match(e.message, /e\.g\. http:\/\/127\.0\.0\.1:9093/);
      return true;
    });
  }
  assert.throws(
    () => load({ ...policy, ALERT_WEBHOOK_URL: "hooks.example.com" }),
    /ALERT_WEBHOOK_URL="hooks.example.com" is not valid: expected an http:\/\/ or https:\/\/ URL/,
  );
  assert.throws(() => load({ ...policy, ALERT_QUEUE_DIR: "a\nb" }), /ALERT_QUEUE_DIR=.*a directory path/);
});
