import assert from "node:assert/strict";
import {
  ALERT_NAME,
  alertmanagerPayload,
  alertOf,
  fingerprint,
  FIRING_TTL_MS,
  labelKey,
  summaryOf,
  webhookPayload,
} from "./alert.ts";
import { CRITICAL, openPortFixture } from "./testing.ts";

Deno.test("alert: labels, annotations and startsAt of an open port", () => {
  const a = alertOf(openPortFixture(), { ...CRITICAL, description: "no debugger in production" });
  assert.deepEqual(a.labels, {
    alertname: ALERT_NAME,
    host: "web-1",
    container: "api",
    port: "9229",
    proto: "tcp",
    severity: "critical",
  });
  assert.deepEqual(a.annotations, {
    rule: "no-node-debugger",
    description: "no debugger in production",
    summary: "tcp/9229 open on 0.0.0.0 in container api on host web-1 (pid 123)",
    addrs: "0.0.0.0",
    process: "node (pid 123, uid 1000): node --inspect=0.0.0.0:9229 app.js",
  });
  assert.equal(a.startsAt, "2026-12-08T10:00:00.000Z");
  assert.equal(a.endsAt, undefined);
  assert.equal(a.generatorURL, undefined);
});

Deno.test("alert: container falls back to the id, then to '' for the host; default rule and severity", () => {
  const byId = alertOf(openPortFixture({ container_name: null }), CRITICAL);
  assert.equal(byId.labels.container, "3f4e1c2b9a7d");
  const host = alertOf(
    openPortFixture({ container_name: null, container_id: null, pids: [1, 2], addrs: ["::", "0.0.0.0"] }),
    { verdict: "alert", rule: null },
  );
  assert.equal(host.labels.container, "");
  assert.equal(host.labels.severity, "warning");
  assert.equal(host.annotations.rule, "(default)");
  assert.equal(host.annotations.summary, "tcp/9229 open on ::, 0.0.0.0 on host web-1 (pids 1, 2)");
  assert.equal(
    summaryOf(openPortFixture({ host: null, addrs: [], pids: [] })),
    "tcp/9229 open in container api",
  );
  assert.equal(alertOf(openPortFixture({ process: null }), CRITICAL).annotations.process, "");
});

Deno.test("alert: generatorURL links the port in the listener's GET /ports", () => {
  const a = alertOf(openPortFixture(), CRITICAL, "http://listener:8080/");
  assert.equal(
    a.generatorURL,
    "http://listener:8080/ports?port=9229&proto=tcp&host=web-1&container=3f4e1c2b9a7d",
  );
});

Deno.test("alert: fingerprints depend on the labels only, not their order", () => {
  const a = alertOf(openPortFixture(), CRITICAL);
  const b = alertOf(openPortFixture({ pids: [9], since: "2027-01-01T00:00:00.000Z" }), CRITICAL);
  assert.equal(fingerprint(a.labels), fingerprint(b.labels));
  assert.equal(fingerprint({ x: "1", y: "2" }), fingerprint({ y: "2", x: "1" }));
  assert.notEqual(fingerprint(a.labels), fingerprint({ ...a.labels, severity: "warning" }));
  assert.match(fingerprint(a.labels), /^[0-9a-f]{16}$/);
  assert.equal(labelKey({ b: "2", a: "1" }), 'a="1",b="2"');
});

Deno.test("alert: Alertmanager payload: firing ends 5 min ahead, resolved at its end, never before startsAt", () => {
  const now = Date.parse("2026-12-08T11:00:00.000Z");
  const a = alertOf(openPortFixture(), CRITICAL);
  const other = alertOf(openPortFixture({ port: 5000 }), CRITICAL);
  const body = alertmanagerPayload([
    { alert: a, status: "firing" },
    { alert: other, status: "firing" },
    { alert: a, status: "resolved", endsAt: "2026-12-08T10:30:00.000Z" },
  ], now);
  // the later item about the same labels replaces the earlier one, in its place
  assert.deepEqual(body.map((x) => [x.labels.port, x.endsAt]), [
    ["5000", new Date(now + FIRING_TTL_MS).toISOString()],
    ["9229", "2026-12-08T10:30:00.000Z"],
  ]);
  const early = alertmanagerPayload(
    [{ alert: a, status: "resolved", endsAt: "2026-12-08T09:00:00.000Z" }],
    now,
  );
  assert.equal(early[0].endsAt, a.startsAt);
  const unset = alertmanagerPayload([{ alert: a, status: "resolved" }], now);
  assert.equal(unset[0].endsAt, "2026-12-08T11:00:00.000Z");
  assert.equal(a.endsAt, undefined, "the alert given is not changed");
});

Deno.test("alert: the webhook payload carries the transition, the port and the event id", () => {
  const port = openPortFixture();
  const a = alertOf(port, CRITICAL);
  const firing = webhookPayload({ status: "firing", alert: a, port, eventId: "e1" });
  assert.deepEqual(firing, { version: 1, status: "firing", alert: a, port, event_id: "e1" });
  const resolved = webhookPayload({
    status: "resolved",
    alert: a,
    port,
    eventId: "e2",
    endsAt: "2026-12-08T10:30:00.000Z",
  });
  assert.equal(resolved.alert.endsAt, "2026-12-08T10:30:00.000Z");
  assert.equal(resolved.status, "resolved");
});

Deno.test("alert: the fingerprint is FNV-1a 64 of the label key (against a BigInt reference)", () => {
  const reference = (text: string) => {
    let h = 0xcbf29ce484222325n;
    for (const b of new TextEncoder().encode(text)) {
      h = ((h ^ BigInt(b)) * 0x100000001b3n) & 0xffffffffffffffffn;
    }
    return h.toString(16).padStart(16, "0");
  };
  const sets: Record<string, string>[] = [{}, { a: "" }, {
    alertname: "PortwatchUnexpectedPort",
    port: "9229",
  }];
  for (let i = 0; i < 200; i++) {
    const labels: Record<string, string> = {};
    for (let k = 0; k < 1 + (i % 6); k++) labels[`k${k}`] = crypto.randomUUID().slice(0, i % 36) + "é✓";
    sets.push(labels);
  }
  for (const labels of sets) assert.equal(fingerprint(labels), reference(labelKey(labels)), labelKey(labels));
});
