import assert from "node:assert/strict";
import { uuidv7 } from "../../events/id.ts";
import { elapse, waitUntil } from "../../infra/wait.ts";
import type { Verdict } from "../../policy/match.ts";
import { type Alerts, startAlerts } from "../alerts/mod.ts";
import type { WebhookPayload } from "../alerts/alert.ts";
import { captureTarget, record } from "../alerts/testing.ts";
import type { Record_ } from "../validate.ts";
import { PgStore } from "./store.ts";
import { freshDatabase, postgresSkipReason, startPostgres } from "./testing.ts";

const skip = postgresSkipReason();
if (skip) console.log(`pg/alert_outbox_test.ts: skipped: ${skip}`);

const CRITICAL: Verdict = { verdict: "alert", rule: "no-node-debugger", severity: "critical" };

/** A replica: a store over `url` with alerts to the given targets. */
async function replica(
  url: string,
  targets: { alertmanagerUrl?: string; webhookUrl?: string },
  refreshMs = 3_600_000,
) {
  const { store } = await PgStore.open({ url, retentionDays: 0, pollMs: 100, startTimeoutMs: 5000 });
  const alerts = await startAlerts({
    store,
    evaluate: (p) => (p.port === 9229 ? CRITICAL : null),
    config: { ...targets, refreshMs, outbox: { pollMs: 100 } },
  });
  return {
    store,
    alerts,
    ingest: (...r: Record<string, unknown>[]) => store.ingest(r as Record_[]),
    async close() {
      await alerts.close();
      await store.close();
    },
  };
}

const ev = (over: Record<string, unknown> = {}) => record({ id: uuidv7(), ...over });
const settled = (rs: { alerts: Alerts }[]) => Promise.all(rs.map((r) => r.alerts.settled()));

Deno.test({
  name:
    "alert outbox (PostgreSQL): two replicas following the same records queue one row per transition, sent once",
  ignore: skip !== undefined,
  async fn(t) {
    await using pg = await startPostgres();

    await t.step("both targets; the firing and the resolve stored through different replicas", async () => {
      const url = await freshDatabase(pg);
      const am = captureTarget();
      const hook = captureTarget();
      const targets = { alertmanagerUrl: am.url, webhookUrl: hook.url };
      const a = await replica(url, targets);
      const b = await replica(url, targets);
      const db = url.split("/").at(-1);
      const rows = async () =>
        (await pg.psql(
          "SELECT target || ' ' || coalesce(outcome, 'pending') FROM alert_outbox ORDER BY target, id",
          db,
        ))
          .trim().split("\n").filter((l) => l !== "");
      try {
        const opened = ev();
        await a.ingest(opened, ev({ port: 80, policy: { verdict: "allow", rule: null } }));
        await waitUntil(
          "both replicas firing",
          () => a.alerts.firing().length === 1 && b.alerts.firing().length === 1,
        );
        await settled([a, b]);
        await waitUntil(
          "the firing delivered",
          async () => (await rows()).every((r) => r.endsWith("delivered")),
        );
        assert.deepEqual(await rows(), ["alertmanager delivered", "webhook delivered"]);

        const closed = ev({ event: "close", pids: [] });
        await b.ingest(closed);
        await waitUntil(
          "both replicas resolved",
          () => a.alerts.firing().length + b.alerts.firing().length === 0,
        );
        await settled([a, b]);
        await waitUntil("the resolve delivered", async () => {
          const r = await rows();
          return r.length === 4 && r.every((x) => x.endsWith("delivered"));
        });
        assert.deepEqual(
          hook.received.map((r) => {
            const p = r.body as WebhookPayload;
            return `${p.status} ${p.event_id}`;
          }),
          [`firing ${opened.id}`, `resolved ${closed.id}`],
        );
        assert.equal(am.received.length, 2, JSON.stringify(am.received));
        assert.deepEqual(
          am.received.map((r) => (r.body as { labels: { port: string } }[]).map((x) => x.labels.port)),
          [
            ["9229"],
            ["9229"],
          ],
        );
      } finally {
        await a.close();
        await b.close();
        await am.close();
        await hook.close();
      }
    });

    await t.step(
      "a target down: the rows wait, attempts counted, and are sent once after the replicas restart",
      async () => {
        const url = await freshDatabase(pg);
        const hook = captureTarget(503);
        const db = url.split("/").at(-1);
        let a = await replica(url, { webhookUrl: hook.url });
        let b = await replica(url, { webhookUrl: hook.url });
        try {
          const opened = ev();
          await a.ingest(opened);
          await waitUntil(
            "both replicas firing",
            () => a.alerts.firing().length === 1 && b.alerts.firing().length === 1,
          );
          await settled([a, b]);
          await waitUntil("a refused POST, and its attempt counted", async () =>
            hook.received.length >= 1 &&
            (await pg.psql("SELECT attempts FROM alert_outbox", db)).trim() !== "0");
          await a.close();
          await b.close();
          hook.status = 200;
          a = await replica(url, { webhookUrl: hook.url });
          b = await replica(url, { webhookUrl: hook.url });
          await waitUntil("the alert delivered", () => hook.received.some((r) => r.status === 200), 15_000);
          await waitUntil(
            "the row done",
            async () => (await pg.psql("SELECT outcome FROM alert_outbox", db)).trim() === "delivered",
          );
          const ok = hook.received.filter((r) => r.status === 200);
          assert.equal(ok.length, 1);
          assert.equal((ok[0].body as WebhookPayload).event_id, opened.id);
          assert.ok(hook.received.every((r) => (r.body as WebhookPayload).event_id === opened.id));
        } finally {
          await a.close();
          await b.close();
          await hook.close();
        }
      },
    );

    await t.step(
      "replicas refreshing Alertmanager all the time: the last word on a closed port is its resolve",
      async () => {
        const url = await freshDatabase(pg);
        const am = captureTarget();
        const a = await replica(url, { alertmanagerUrl: am.url }, 20);
        const b = await replica(url, { alertmanagerUrl: am.url }, 20);
        try {
          for (let round = 0; round < 5; round++) {
            await (round % 2 ? a : b).ingest(ev());
            await waitUntil(
              "both firing",
              () => a.alerts.firing().length === 1 && b.alerts.firing().length === 1,
            );
            await waitUntil("a refresh", () => am.received.length > 2 * round + 2);
            await (round % 2 ? b : a).ingest(ev({ event: "close", pids: [] }));
            await waitUntil("both resolved", () => a.alerts.firing().length + b.alerts.firing().length === 0);
          }
          await settled([a, b]);
          await elapse(500, "a window in which a stale refresh or a late resolve would land");
          const last = am.received.at(-1)!.body as { endsAt: string }[];
          assert.equal(last.length, 1);
          assert.ok(
            Date.parse(last[0].endsAt) <= Date.now(),
            `the last POST resolves: ${JSON.stringify(last)}`,
          );
        } finally {
          await a.close();
          await b.close();
          await am.close();
        }
      },
    );
  },
});
