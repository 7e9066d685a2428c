/**
 * Alerts out: the listener's firing set (state.ts) kept from every stored record, its transitions queued
 * durably per target (queue.ts; the PostgreSQL store's `alert_outbox`, pg/alert_outbox.ts) and sent by one
 * {@link Sender} per target: Prometheus Alertmanager (ALERTMANAGER_URL, API v2) and a JSON webhook
 * (ALERT_WEBHOOK_URL). Runs whenever a policy is configured, targets or not: GET /alerts and the
 * `portwatch_listener_unexpected_open_ports` gauge read the firing set.
 *
 * Replicas on PostgreSQL each follow every stored record (`store.subscribe`), compute the same transitions
 * and enqueue them under the same keys: the outbox keeps one row each, sent once. Each replica refreshes its
 * firing alerts in Alertmanager (equal labels: Alertmanager deduplicates them); a replica that refreshed an
 * alert which another replica's queued resolve may already have reached Alertmanager before sends that resolve
 * again, directly.
 *
 * @example
 * ```ts
 * const alerts = await startAlerts({
 *   store,
 *   evaluate: (port) => policy.policy?.verdictOf(port as unknown as PortEvent) ?? null,
 *   config: { alertmanagerUrl: "http://127.0.0.1:9093", queueDir: "./logs/alerts" },
 * });
 * alerts.firing(); // what GET /alerts lists
 * await alerts.reset(); // after a policy reload
 * await alerts.close();
 * ```
 * @module
 */
import { getLogger, type Logger } from "@logtape/logtape";
import type { Verdict } from "../../policy/match.ts";
import { Registry } from "../../infra/metrics.ts";
import type { OpenPort } from "../ports_state.ts";
import type { Store } from "../store_api.ts";
import type { PgClient } from "../pg/client.ts";
import type { OutboxOptions } from "../pg/alert_outbox.ts";
import { fingerprint } from "./alert.ts";
import { AlertState, type FiringAlert, SEVERITIES, type Transition } from "./state.ts";
import { type AlertQueue, FileAlertQueue, type QueuedAlert, retryDelayMs, type TargetName } from "./queue.ts";
import { Sender } from "./sender.ts";
import { AlertmanagerTarget } from "./alertmanager.ts";
import { WebhookTarget } from "./webhook.ts";
import { displayUrl, type Target } from "./target.ts";

export type { FiringAlert } from "./state.ts";

/** Where alerts go and how. */
export interface AlertsConfig {
  /** Alertmanager's base URL (ALERTMANAGER_URL), e.g. `http://127.0.0.1:9093`. */
  alertmanagerUrl?: string;
  /** The webhook (ALERT_WEBHOOK_URL). */
  webhookUrl?: string;
  /** File store: the queues' directory, one subdirectory per target (default `<dir of LOG_PATH>/alerts`). */
  queueDir?: string;
  /** How often firing alerts are sent to Alertmanager again (ms, default 60 s). */
  refreshMs?: number;
  /** Time one POST may take (ms, default 10 s). */
  sendTimeoutMs?: number;
  /** fsync the file queues (default true). */
  fsync?: boolean;
  /** The listener's URL, for the alerts' generatorURL. */
  listenerUrl?: string;
  /** PostgreSQL store: the outbox's timings (tests). */
  outbox?: OutboxOptions;
}

/** What {@link startAlerts} needs. */
export interface StartAlertsOptions {
  store: Store;
  /** The verdict of an open port under the policy in force now; null when none is. */
  evaluate: (port: OpenPort) => Verdict | null;
  config: AlertsConfig;
  log?: Logger;
  /** Where the alert metrics are registered (the listener's). */
  registry?: Registry;
  /** Whether a policy is in force now (GET /alerts says so when none is); default: always. */
  policyInForce?: () => boolean;
}

/** Running alerts. */
export interface Alerts {
  /** The alerts firing now, sorted like GET /ports. */
  firing(): FiringAlert[];
  /** Why nothing can fire now (no policy in force), or undefined. */
  note(): string | undefined;
  /** Recompute the firing set with the verdicts in force now (after a policy reload); sends the changes. */
  reset(): Promise<void>;
  /** Resolves once every transition so far is queued (tests). */
  settled(): Promise<void>;
  /** The targets' senders, by name (tests, metrics). */
  readonly senders: ReadonlyMap<TargetName, Sender>;
  /** Stop following the store and sending; what is queued stays for the next start. */
  close(): Promise<void>;
}

interface Route {
  queue: AlertQueue;
  sender: Sender;
  chain: Promise<void>;
}

/** The queued item of a transition. */
function itemOf(t: Transition): QueuedAlert {
  return {
    key: t.key,
    status: t.status,
    alert: t.alert,
    port: t.port,
    event_id: t.eventId,
    ...(t.endsAt ? { ends_at: t.endsAt } : {}),
  };
}

/** Open a target's queue: a spool directory, or the outbox table of the PostgreSQL store. */
async function openQueue(target: TargetName, o: StartAlertsOptions): Promise<AlertQueue> {
  if (o.store.kind === "postgres") {
    // Loaded only with the PostgreSQL store, like the store itself.
    const { PgAlertOutbox } = await import("../pg/alert_outbox.ts");
    const client = (o.store as unknown as { client: PgClient }).client;
    return new PgAlertOutbox(target, client, o.config.outbox);
  }
  if (!o.config.queueDir) throw new Error("alerts: the file store's queue directory (queueDir) is not set");
  return await FileAlertQueue.open(target, `${o.config.queueDir}/${target}`, o.config.fsync ?? true);
}

/** How many targets `config` names. */
function targetCount(config: AlertsConfig): number {
  return (config.alertmanagerUrl ? 1 : 0) + (config.webhookUrl ? 1 : 0);
}

/**
 * Start alerts over `store`: take the firing set of the ports open now (silently: it was sent before), then
 * follow every stored record; send to the configured targets.
 */
export async function startAlerts(o: StartAlertsOptions): Promise<Alerts> {
  const log = o.log ?? getLogger(["portwatch", "alerts"]);
  const registry = o.registry ?? new Registry();
  const state = new AlertState(o.config.listenerUrl, { transitions: targetCount(o.config) > 0 });
  const refreshed = new Set<string>();
  const sent = registry.counter({
    name: "portwatch_listener_alerts_sent_total",
    help: "Alert transitions delivered, by target and status (firing or resolved).",
    labelNames: ["target", "status"],
  });
  const failures = registry.counter({
    name: "portwatch_listener_alert_send_failures_total",
    help: "Failed POSTs to an alert target (retried, or refused for good).",
    labelNames: ["target"],
  });
  const routes = new Map<TargetName, Route>();
  registry.gauge({
    name: "portwatch_listener_unexpected_open_ports",
    help: "Open ports whose policy verdict is an alert, by severity.",
    labelNames: ["severity"],
    collect: () => {
      const counts = state.counts();
      return SEVERITIES.map((severity) => ({ labels: { severity }, value: counts[severity] }));
    },
  });
  registry.gauge({
    name: "portwatch_listener_alert_queue_depth",
    help: "Alert transitions waiting for their target (PostgreSQL: all replicas' queue).",
    labelNames: ["target"],
    collect: () => [...routes].map(([target, r]) => ({ labels: { target }, value: r.queue.depth() })),
  });

  const targets: Target[] = [];
  const timeout = o.config.sendTimeoutMs;
  if (o.config.alertmanagerUrl) targets.push(new AlertmanagerTarget(o.config.alertmanagerUrl, timeout));
  if (o.config.webhookUrl) targets.push(new WebhookTarget(o.config.webhookUrl, timeout));
  try {
    for (const target of targets) {
      const queue = await openQueue(target.name, o);
      for (const status of ["firing", "resolved"]) sent.init({ target: target.name, status });
      failures.init({ target: target.name });
      const am = target.name === "alertmanager";
      const sender = new Sender({
        queue,
        target,
        log,
        hooks: {
          sent: (status, n) => sent.inc({ target: target.name, status }, n),
          failed: () => failures.inc({ target: target.name }),
          refreshed: (alerts) => alerts.forEach((a) => refreshed.add(fingerprint(a.labels))),
        },
        refresh: am ? { everyMs: o.config.refreshMs ?? 60_000, alerts: () => state.alerts() } : undefined,
      });
      routes.set(target.name, { queue, sender, chain: Promise.resolve() });
    }
  } catch (e) {
    for (const r of routes.values()) {
      await r.sender.close();
      await r.queue.close();
    }
    throw e;
  }

  let closed = false;
  let stop = () => {};
  const stopped = new Promise<void>((resolve) => stop = resolve);
  /** Wait `ms`, or less when closing. */
  const pause = async (ms: number) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([stopped, new Promise((res) => timer = setTimeout(res, ms))]);
    clearTimeout(timer);
  };
  /** Queue `items` durably, retrying (1 s doubling to 60 s) while the queue cannot take them. */
  const push = async (target: TargetName, r: Route, items: QueuedAlert[]): Promise<Set<string>> => {
    for (let attempt = 1;; attempt++) {
      try {
        return await r.queue.enqueue(items);
      } catch (e) {
        if (closed) {
          log.error("alerts: {n} transition(s) for {target} not queued at shutdown: {error}", {
            n: items.length,
            target,
            error: String(e),
          });
          return new Set();
        }
        if (attempt === 1 || attempt % 10 === 0) {
          log.warn("alerts: cannot queue {n} transition(s) for {target}, retrying: {error}", {
            n: items.length,
            target,
            error: String(e),
          });
        }
        await pause(retryDelayMs(attempt));
      }
    }
  };

  const enqueue = (transitions: Transition[]) => {
    if (transitions.length === 0) return;
    for (const [target, r] of routes) {
      // Alertmanager knows alerts by their labels: a resolve while another port fires the same labels is not
      // its business (the webhook, which gets the port, is told).
      const items = transitions.filter((t) => !(target === "alertmanager" && t.labelsStillFiring)).map(
        itemOf,
      );
      if (items.length === 0) continue;
      r.chain = r.chain.then(async () => {
        const added = await push(target, r, items);
        r.sender.wake();
        if (target !== "alertmanager") return;
        const again = [];
        for (const i of items) {
          if (i.status !== "resolved") continue;
          const fp = fingerprint(i.alert.labels);
          // Another replica queued this resolve first, and this one refreshed the alert meanwhile: its
          // refresh may have reached Alertmanager after the resolve did. Say it again.
          if (!added.has(i.key) && refreshed.has(fp)) again.push({ alert: i.alert, endsAt: i.ends_at });
          if (!state.firesLabels(i.alert.labels)) refreshed.delete(fp);
        }
        if (again.length > 0) r.sender.resolveDirect(again);
      });
    }
  };

  // Records stored while the firing set is (re)computed wait, then are applied on top: applying a record
  // the open ports already reflect changes nothing.
  let held: Record<string, unknown>[] | undefined = [];
  const unsubscribe = o.store.subscribe(({ record }) => {
    if (held) held.push(record);
    else enqueue(state.apply(record));
  });
  const release = () => {
    const records = held ?? [];
    held = undefined;
    for (const r of records) enqueue(state.apply(r));
  };
  try {
    state.reset(await o.store.openPorts({}), o.evaluate, { silent: true });
  } catch (e) {
    unsubscribe();
    for (const r of routes.values()) {
      await r.sender.close();
      await r.queue.close();
    }
    throw e;
  }
  release();
  log.info("alerts: {n} unexpected port(s) open now; sending to {targets}", {
    n: state.size,
    targets: targets.length > 0
      ? targets.map((t) => `${t.name} ${displayUrl(t.url)}`).join(", ")
      : "no target (GET /alerts only)",
  });

  let resetting: Promise<void> = Promise.resolve();
  return {
    firing: () => state.firing(),
    note: () =>
      o.policyInForce && !o.policyInForce()
        ? "no policy is in force (POLICY_PATH has no valid policy yet): no port is judged unexpected"
        : undefined,
    reset() {
      resetting = resetting.then(async () => {
        if (closed) return;
        held ??= [];
        try {
          enqueue(state.reset(await o.store.openPorts({}), o.evaluate));
        } catch (e) {
          log.error("alerts: recomputing the firing set after a policy change failed: {error}", {
            error: String(e),
          });
        } finally {
          release();
        }
      });
      return resetting;
    },
    async settled() {
      await resetting;
      await Promise.all([...routes.values()].map((r) => r.chain));
    },
    senders: new Map([...routes].map(([t, r]) => [t, r.sender])),
    async close() {
      if (closed) return;
      unsubscribe();
      await resetting;
      closed = true;
      stop();
      await Promise.all([...routes.values()].map((r) => r.chain));
      for (const r of routes.values()) {
        await r.sender.close();
        await r.queue.close();
      }
    },
  };
}
