import assert from "node:assert/strict";
import { loadFleetConfig } from "./config.ts";
import { envOf } from "../infra/env.ts";
import { ConfigError } from "../infra/config_error.ts";

Deno.test("fleet config: defaults, flags over environment, bad values named", () => {
  const d = loadFleetConfig([], envOf({}));
  assert.ok(d !== "help");
  assert.equal(d.hosts, 1000);
  assert.equal(d.replicas, 2);
  assert.equal(d.store, "postgres");
  const f = loadFleetConfig(
    ["--hosts", "50", "--store", "file"],
    envOf({ FLEET_HOSTS: "7", FLEET_RATE: "9" }),
  );
  assert.ok(f !== "help");
  assert.equal(f.hosts, 50);
  assert.equal(f.rate, 9);
  assert.equal(f.replicas, 1);
  assert.throws(() => loadFleetConfig(["--store", "mysql"], envOf({})), ConfigError);
  assert.throws(() => loadFleetConfig(["--hosts", "0"], envOf({})), /--hosts/);
  assert.throws(() => loadFleetConfig(["--store", "file", "--replicas", "2"], envOf({})), /file/);
  assert.throws(() => loadFleetConfig(["--listeners", "localhost:8080"], envOf({})), /--listeners/);
  assert.equal(loadFleetConfig(["-h"], envOf({})), "help");
});
