import assert from "node:assert/strict";
import type { Verdict } from "../../policy/match.ts";
import type { OpenPort } from "../ports_state.ts";
import { fingerprint } from "./alert.ts";
import { AlertState, type Transition } from "./state.ts";
import { ALLOW, CRITICAL, openPortFixture, record } from "./testing.ts";

const brief = (ts: Transition[]) =>
  ts.map((t) => `${t.status} ${t.alert.labels.port} ${t.alert.labels.severity}`);

Deno.test("state: an unexpected open fires; a repeat or a change with the same labels sends nothing; close resolves", () => {
  const s = new AlertState();
  const open = record();
  const fired = s.apply(open);
  assert.deepEqual(brief(fired), ["firing 9229 critical"]);
  assert.equal(fired[0].eventId, open.id);
  assert.equal(fired[0].key, `${open.id}|firing|${fingerprint(fired[0].alert.labels)}`);
  assert.equal(fired[0].alert.startsAt, open.observed_at);
  assert.deepEqual(s.apply(record()), [], "a repeated open");
  assert.deepEqual(s.apply(record({ event: "change", pids: [456] })), [], "new holders, same labels");
  assert.deepEqual(s.firing().map((a) => [a.port.pids, a.startsAt]), [[[456], open.observed_at]]);
  assert.equal(
    s.firing()[0].annotations.summary,
    "tcp/9229 open on 0.0.0.0 in container api on host web-1 (pid 456)",
  );
  const close = record({ event: "close", pids: [], policy: undefined });
  const resolved = s.apply(close);
  assert.deepEqual(brief(resolved), ["resolved 9229 critical"]);
  assert.equal(resolved[0].endsAt, close.observed_at);
  assert.equal(resolved[0].key, `${close.id}|resolved|${fingerprint(resolved[0].alert.labels)}`);
  assert.equal(s.size, 0);
  assert.deepEqual(s.apply(record({ event: "close" })), [], "a close of a port not firing");
});

Deno.test("state: allowed ports never fire; an allow on a firing port resolves it; no verdict keeps it", () => {
  const s = new AlertState();
  assert.deepEqual(s.apply(record({ port: 80, policy: ALLOW })), []);
  assert.deepEqual(s.apply(record({ port: 81, policy: undefined })), [], "stored without a policy");
  s.apply(record());
  assert.deepEqual(s.apply(record({ event: "change", policy: null, pids: [7] })), []);
  assert.equal(s.size, 1);
  assert.deepEqual(s.firing()[0].port.pids, [7]);
  assert.deepEqual(brief(s.apply(record({ event: "change", policy: ALLOW }))), ["resolved 9229 critical"]);
  assert.equal(s.size, 0);
  assert.deepEqual(s.apply({ message: "port 5000 is up" }), [], "a plain-text record");
});

Deno.test("state: a change of labels (severity, container name) resolves the old alert and fires the new", () => {
  const s = new AlertState();
  s.apply(record());
  const t = s.apply(record({ event: "change", policy: { ...CRITICAL, severity: "warning" } }));
  assert.deepEqual(brief(t), ["resolved 9229 critical", "firing 9229 warning"]);
  assert.equal(t[0].eventId, t[1].eventId);
  assert.notEqual(t[0].key, t[1].key);
  const renamed = s.apply(
    record({ event: "change", container_name: "api-2", policy: { ...CRITICAL, severity: "warning" } }),
  );
  assert.deepEqual(renamed.map((x) => `${x.status} ${x.alert.labels.container}`), [
    "resolved api",
    "firing api-2",
  ]);
  assert.deepEqual(s.counts(), { info: 0, warning: 1, critical: 0 });
});

Deno.test("state: firing() is sorted like GET /ports; counts by severity; one refresh alert per label set", () => {
  const s = new AlertState();
  s.apply(record({ host: "b", port: 22 }));
  s.apply(record({ host: "a", port: 9229, policy: { ...CRITICAL, severity: "info" } }));
  s.apply(record({ host: "a", port: 80 }));
  assert.deepEqual(s.firing().map((a) => `${a.port.host}:${a.port.port}`), ["a:80", "a:9229", "b:22"]);
  assert.deepEqual(s.counts(), { info: 1, warning: 0, critical: 2 });
  assert.equal(s.alerts().length, 3);
});

Deno.test("state: two ports with the same labels (two namespaces): Alertmanager hears the resolve of the last", () => {
  const s = new AlertState();
  s.apply(record({ netns: 1 }));
  s.apply(record({ netns: 2 }));
  assert.equal(s.size, 2);
  assert.equal(s.alerts().length, 1, "one alert per label set");
  const first = s.apply(record({ netns: 1, event: "close" }));
  assert.equal(first[0].labelsStillFiring, true);
  assert.ok(s.firesLabels(first[0].alert.labels));
  const last = s.apply(record({ netns: 2, event: "close" }));
  assert.equal(last[0].labelsStillFiring, undefined);
  assert.ok(!s.firesLabels(last[0].alert.labels));
});

Deno.test("state: reset at start takes the set silently; a reload sends what changed, resolves first", () => {
  const ports: OpenPort[] = [
    openPortFixture({ port: 9229 }),
    openPortFixture({ port: 80, policy: ALLOW }),
    openPortFixture({ port: 22, event_id: "e22" }),
  ];
  const first = (p: OpenPort): Verdict | null => (p.port === 9229 || p.port === 22 ? CRITICAL : ALLOW);
  const s = new AlertState();
  assert.deepEqual(s.reset(ports, first, { silent: true }), []);
  assert.equal(s.size, 2);
  // The new policy: 22 allowed, 80 unexpected, 9229 only a warning now.
  const second = (p: OpenPort): Verdict | null =>
    p.port === 80 ? CRITICAL : p.port === 9229 ? { ...CRITICAL, severity: "warning" } : ALLOW;
  const now = Date.parse("2026-12-08T12:00:00.000Z");
  const gen = s.generation();
  const t = s.reset(ports, second, { now });
  assert.deepEqual(brief(t), [
    "resolved 9229 critical",
    "resolved 22 critical",
    "firing 9229 warning",
    "firing 80 critical",
  ]);
  assert.equal(t[1].endsAt, "2026-12-08T12:00:00.000Z");
  assert.equal(t[1].eventId, "e22");
  assert.ok(t.every((x) => x.key.startsWith(`reset:${gen}|`)), "keys carry the previous set's generation");
  assert.deepEqual(s.reset(ports, second, { now }), [], "the same verdicts again: nothing");
  // Another replica that held the same set computes the same keys.
  const replica = new AlertState();
  replica.reset(ports, first, { silent: true });
  assert.deepEqual(replica.reset(ports, second, { now }).map((x) => x.key), t.map((x) => x.key));
  // No policy in force any more: everything resolves.
  assert.deepEqual(brief(s.reset(ports, () => null, { now })), [
    "resolved 9229 warning",
    "resolved 80 critical",
  ]);
});

Deno.test("state: replicas applying the same records compute the same transitions and keys", () => {
  const records = [
    record(),
    record({ port: 80, policy: ALLOW }),
    record({ event: "change", policy: { ...CRITICAL, severity: "info" } }),
    record({ event: "close" }),
  ];
  const run = () => {
    const s = new AlertState();
    return records.flatMap((r) => s.apply(r)).map((t) => t.key);
  };
  const keys = run();
  assert.equal(keys.length, 4);
  assert.deepEqual(run(), keys);
  assert.equal(new Set(keys).size, 4);
});

Deno.test("state: without targets (transitions: false) the firing set is kept alike, and nothing is built to send", () => {
  const sending = new AlertState();
  const keeping = new AlertState(undefined, { transitions: false });
  const records = [
    record(),
    record({ port: 80, policy: ALLOW }),
    record({ port: 6379, policy: { ...CRITICAL, severity: "warning" } }),
    record({ event: "change", pids: [456] }),
    record({ port: 6379, event: "close", pids: [] }),
  ];
  for (const r of records) {
    sending.apply(r);
    assert.deepEqual(keeping.apply(r), []);
  }
  assert.deepEqual(keeping.firing(), sending.firing());
  assert.deepEqual(keeping.counts(), { info: 0, warning: 0, critical: 1 });
  assert.deepEqual(keeping.reset([], () => null), []);
  assert.equal(keeping.size, 0);
});
