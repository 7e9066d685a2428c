import assert from "node:assert/strict";
import type { PortEvent } from "../../events/schema.ts";
import { Registry } from "../../infra/metrics.ts";
import { waitUntil } from "../../infra/wait.ts";
import { parsePolicy } from "../../policy/load.ts";
import { NODE_DEBUGGER_POLICY } from "../../policy/testing.ts";
import { createApp } from "../app.ts";
import { EventStore } from "../file/store.ts";
import type { OpenPort } from "../ports_state.ts";
import { storeOptions, withTempDir } from "../testing.ts";
import type { Record_ } from "../validate.ts";
import type { Alert, WebhookPayload } from "./alert.ts";
import { type AlertsConfig, startAlerts } from "./mod.ts";
import { ALLOW, captureTarget, record } from "./testing.ts";

const policy = parsePolicy(NODE_DEBUGGER_POLICY, "policy.yaml");
const evaluate = (port: OpenPort) => policy.verdictOf(port as unknown as PortEvent);

/** The file store over `dir` and alerts over it. */
async function open(dir: string, config: Partial<AlertsConfig>, registry = new Registry()) {
  const { store } = await EventStore.open(storeOptions(dir));
  const alerts = await startAlerts({
    store,
    evaluate,
    config: { queueDir: `${dir}/alerts`, fsync: false, refreshMs: 3_600_000, ...config },
    registry,
  });
  return {
    store,
    alerts,
    registry,
    ingest: (...records: Record<string, unknown>[]) => store.ingest(records as Record_[]),
    async close() {
      await alerts.close();
      await store.close();
    },
  };
}

Deno.test("alerts (file store): an unexpected port fires to both targets and resolves on close; GET /alerts; metrics", async () => {
  await withTempDir(async (dir) => {
    const am = captureTarget();
    const hook = captureTarget();
    const l = await open(dir, { alertmanagerUrl: am.url, webhookUrl: `${hook.url}/hook` });
    try {
      const app = createApp(l.store, { bodyLimit: 1 << 20, alerts: l.alerts });
      assert.deepEqual(await (await app.request("/alerts")).json(), { count: 0, alerts: [] });
      const opened = record();
      await l.ingest(record({ port: 80, policy: ALLOW }), opened);
      const delivered = (target: string, status: string) =>
        new RegExp(`alerts_sent_total\\{target="${target}",status="${status}"\\} 1\n`).test(
          l.registry.expose(),
        );
      await waitUntil(
        "the firing alert delivered to both targets",
        () => delivered("alertmanager", "firing") && delivered("webhook", "firing"),
      );
      const [sent] = am.received;
      assert.equal(sent.path, "/api/v2/alerts");
      const [alert] = sent.body as Alert[];
      assert.equal((sent.body as Alert[]).length, 1);
      assert.deepEqual(alert.labels, {
        alertname: "PortwatchUnexpectedPort",
        host: "web-1",
        container: "api",
        port: "9229",
        proto: "tcp",
        severity: "critical",
      });
      assert.equal(alert.startsAt, opened.observed_at);
      assert.ok(Date.parse(alert.endsAt!) > Date.now() + 4 * 60_000, "firing: ends 5 minutes ahead");
      const fired = hook.received[0].body as WebhookPayload;
      assert.equal(hook.received[0].path, "/hook");
      assert.deepEqual([fired.version, fired.status, fired.event_id, fired.port.port], [
        1,
        "firing",
        opened.id,
        9229,
      ]);

      const listed = await (await app.request("/alerts")).json();
      assert.equal(listed.count, 1);
      assert.deepEqual(listed.alerts[0].labels, alert.labels);
      assert.equal(listed.alerts[0].port.event_id, opened.id);
      assert.equal(listed.note, undefined);
      const metrics = l.registry.expose();
      assert.match(metrics, /portwatch_listener_unexpected_open_ports\{severity="critical"\} 1\n/);
      assert.match(metrics, /portwatch_listener_unexpected_open_ports\{severity="warning"\} 0\n/);
      assert.match(
        metrics,
        /portwatch_listener_alerts_sent_total\{target="alertmanager",status="firing"\} 1\n/,
      );
      assert.match(metrics, /portwatch_listener_alert_queue_depth\{target="webhook"\} 0\n/);

      const closed = record({ event: "close", pids: [] });
      await l.ingest(closed);
      await waitUntil(
        "the resolve delivered to both targets",
        () => delivered("alertmanager", "resolved") && delivered("webhook", "resolved"),
      );
      assert.deepEqual([am.received.length, hook.received.length], [2, 2]);
      const [resolved] = am.received[1].body as Alert[];
      assert.deepEqual(resolved.labels, alert.labels);
      assert.equal(resolved.endsAt, closed.observed_at);
      const hookResolved = hook.received[1].body as WebhookPayload;
      assert.deepEqual([hookResolved.status, hookResolved.event_id], ["resolved", closed.id]);
      assert.equal((await (await app.request("/alerts")).json()).count, 0);
    } finally {
      await l.close();
      await am.close();
      await hook.close();
    }
  });
});

Deno.test("alerts (file store): a failing webhook is retried; what it missed is delivered once, after a restart", async () => {
  await withTempDir(async (dir) => {
    const hook = captureTarget(503);
    let l = await open(dir, { webhookUrl: hook.url });
    const opened = record();
    try {
      await l.ingest(opened);
      await waitUntil(
        "a refused POST, and its retry 1 s later",
        () => /alert_send_failures_total\{target="webhook"\} [2-9]/.test(l.registry.expose()),
        5_000,
      );
      assert.ok(hook.received.length >= 2);
      assert.match(l.registry.expose(), /alert_queue_depth\{target="webhook"\} 1\n/);
      await l.close();
      // The listener restarts; the webhook answers again.
      hook.status = 200;
      l = await open(dir, { webhookUrl: hook.url });
      assert.equal(l.alerts.firing().length, 1, "the open port is found firing again, silently");
      await waitUntil("the alert delivered", () => hook.received.some((r) => r.status === 200));
      await l.ingest(record({ event: "close" }));
      await waitUntil(
        "the resolve delivered",
        () => hook.received.filter((r) => r.status === 200).length >= 2,
      );
      const ok = hook.received.filter((r) => r.status === 200).map((r) => r.body as WebhookPayload);
      assert.deepEqual(ok.map((b) => `${b.status} ${b.event_id === opened.id}`), [
        "firing true",
        "resolved false",
      ]);
      assert.ok(
        hook.received.filter((r) => r.status === 503).every((r) =>
          (r.body as WebhookPayload).event_id === opened.id
        ),
      );
    } finally {
      await l.close();
      await hook.close();
    }
  });
});

Deno.test("alerts: Alertmanager gets every firing alert again with the refresh; a reset sends what the policy changed", async () => {
  await withTempDir(async (dir) => {
    const am = captureTarget();
    let verdictNow = evaluate;
    const { store } = await EventStore.open(storeOptions(dir));
    const alerts = await startAlerts({
      store,
      evaluate: (p) => verdictNow(p),
      config: { queueDir: `${dir}/alerts`, fsync: false, refreshMs: 100, alertmanagerUrl: am.url },
    });
    try {
      await store.ingest([record(), record({ port: 22, policy: ALLOW })] as Record_[]);
      await waitUntil("two refreshes after the firing", () => am.received.length >= 3);
      for (const r of am.received) assert.deepEqual((r.body as Alert[]).map((a) => a.labels.port), ["9229"]);
      // The policy changes: port 22 is unexpected too now, 9229 no longer.
      verdictNow = (p) => (p.port === 22 ? { verdict: "alert", rule: "no-ssh", severity: "warning" } : ALLOW);
      const before = am.received.length;
      await alerts.reset();
      await waitUntil("the reset's transitions in one POST", () =>
        am.received.slice(before).some((r) => {
          const sent = r.body as Alert[];
          return sent.some((a) => a.labels.port === "22") &&
            sent.some((a) => a.labels.port === "9229" && Date.parse(a.endsAt!) <= Date.now());
        }));
      const after = am.received.length;
      await waitUntil(
        "a refresh with port 22 only",
        () =>
          am.received.slice(after).some((r) => (r.body as Alert[]).map((a) => a.labels.port).join() === "22"),
      );
      assert.deepEqual(alerts.firing().map((a) => a.labels.port), ["22"]);
    } finally {
      await alerts.close();
      await store.close();
      await am.close();
    }
  });
});

Deno.test("alerts: without a policy in force GET /alerts says so", async () => {
  await withTempDir(async (dir) => {
    const { store } = await EventStore.open(storeOptions(dir));
    const alerts = await startAlerts({ store, evaluate: () => null, config: {}, policyInForce: () => false });
    try {
      const body = await (await createApp(store, { bodyLimit: 1 << 20, alerts }).request("/alerts")).json();
      assert.equal(body.count, 0);
      assert.match(body.note, /no policy is in force/);
      const none = await (await createApp(store, { bodyLimit: 1 << 20 }).request("/alerts")).json();
      assert.deepEqual([none.count, none.alerts], [0, []]);
      assert.match(none.note, /POLICY_PATH is not set/);
    } finally {
      await alerts.close();
      await store.close();
    }
  });
});
