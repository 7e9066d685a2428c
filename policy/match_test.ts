import assert from "node:assert/strict";
import { NODE_DEBUGGER_POLICY, testEvent } from "./testing.ts";
import type { PortEvent } from "../events/schema.ts";
import { parsePolicy } from "./load.ts";

const event = testEvent;

Deno.test("policy match: the issue's example alerts on a debugger port on any address, allows the rest", () => {
  const p = parsePolicy(NODE_DEBUGGER_POLICY);
  assert.deepEqual(p.verdictOf(event()), {
    verdict: "alert",
    rule: "no-node-debugger",
    severity: "critical",
  });
  assert.deepEqual(p.verdictOf(event({ addrs: ["::"] })).verdict, "alert");
  assert.deepEqual(p.verdictOf(event({ addrs: ["127.0.0.1"] })), { verdict: "allow", rule: null });
  assert.deepEqual(p.verdictOf(event({ port: 3000 })), { verdict: "allow", rule: null });
});

Deno.test("policy match: first match wins; every field of a match must hold; lists are any-of", () => {
  const p = parsePolicy(`rules:
  - name: db-loopback
    description: databases listen on loopback only
    match: { port: [5432, "3306"], addresses: loopback }
    action: allow
  - name: db-exposed
    match: { port: "5432,3306" }
    action: alert
  - name: web-tier
    match: { compose_service: web, port: "80,443" }
    action: allow
  - name: web-other
    match: { compose_service: web }
    action: alert
    severity: critical
  - name: by-image-and-process
    match: { image: "redis:*", comm: redis-*, exe: "*/redis-server", uid: [999], proto: tcp, host: "edge-*" }
    action: alert
    severity: info
default: { action: alert, severity: warning }
`);
  const v = (over: Partial<PortEvent>) => p.verdictOf(event(over));
  assert.equal(v({ port: 5432, addrs: ["127.0.0.1", "::1"], compose_service: null }).rule, "db-loopback");
  assert.equal(v({ port: 5432, addrs: ["127.0.0.1", "0.0.0.0"], compose_service: null }).rule, "db-exposed");
  assert.equal(v({ port: 443 }).rule, "web-tier");
  assert.deepEqual(v({ port: 8080 }), { verdict: "alert", rule: "web-other", severity: "critical" });
  const redis = {
    compose_service: "cache",
    image: "redis:7",
    port: 6379,
    process: { pid: 5, comm: "redis-server", cmdline: "/usr/bin/redis-server *:6379", uid: 999 },
  };
  assert.deepEqual(v(redis), { verdict: "alert", rule: "by-image-and-process", severity: "info" });
  assert.equal(v({ ...redis, process: { ...redis.process, uid: 0 } }).rule, null, "uid differs: the default");
  assert.equal(v({ ...redis, host: "core-1" }).rule, null, "host differs");
  assert.equal(v({ ...redis, process: undefined }).rule, null, "no process known: no process field matches");
  assert.deepEqual(v({ compose_service: null, port: 1 }), {
    verdict: "alert",
    rule: null,
    severity: "warning",
  });
  assert.equal(p.verdictOf(event({ port: 5432, addrs: ["::1"], compose_service: null })).rule, "db-loopback");
});

Deno.test("policy match: containers by name and id prefix; a host port has no container to match", () => {
  const p = parsePolicy(`rules:
  - { name: by-id, match: { container_id: "dd77*" }, action: alert }
  - { name: by-name, match: { container: "api-*" }, action: alert }
`);
  assert.equal(p.verdictOf(event()).rule, "by-id");
  assert.equal(p.verdictOf(event({ container_id: "ab12", container_name: "api-3" })).rule, "by-name");
  assert.equal(p.verdictOf(event({ container_id: null, container_name: null })).rule, null);
});

Deno.test("policy match: events of older watchers (no addrs, a process without cmdline) get a verdict, not a throw", () => {
  const p = parsePolicy(`rules:
  - { name: dbg, match: { port: 9229, addresses: any }, action: alert }
  - { name: by-exe, match: { exe: "*/java", comm: java, uid: 0 }, action: alert }
default: allow
`);
  const old = { ...event(), addrs: undefined, process: { pid: 1, comm: "java" } } as unknown as PortEvent;
  assert.deepEqual(p.verdictOf(old), { verdict: "allow", rule: null });
  assert.deepEqual(p.ruleVerdictInTurn(old), undefined);
  const none = { ...event(), process: null } as unknown as PortEvent;
  assert.equal(p.verdictOf(none).verdict, "alert", "still on 0.0.0.0:9229");
});
