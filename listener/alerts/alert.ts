/**
 * The alert of an unexpected open port, and the payloads that carry it: Alertmanager's API v2 (`POST
 * /api/v2/alerts`, an array of alerts) and portwatch's generic JSON webhook (one alert per POST). Pure.
 *
 * Labels (an alert's identity in Alertmanager: equal labels are one alert): `alertname`
 * ("PortwatchUnexpectedPort"), `host`, `container` (the container's name, else its id, else "" for the host
 * itself), `port`, `proto`, `severity`. Annotations: `rule`, `description`, `summary`, `addrs`, `process`.
 * `startsAt` is the port's `since`.
 *
 * @example
 * ```ts
 * const alert = alertOf(port, { verdict: "alert", rule: "no-node-debugger", severity: "critical" });
 * alert.labels; // { alertname: "PortwatchUnexpectedPort", host: "web-1", container: "api", port: "9229", ... }
 * JSON.stringify(alertmanagerPayload([{ alert, status: "firing" }], Date.now()));
 * ```
 * @module
 */
import type { Verdict } from "../../policy/match.ts";
import type { OpenPort } from "../ports_state.ts";

/** The `alertname` label of every portwatch alert. */
export const ALERT_NAME = "PortwatchUnexpectedPort";

/** How long a firing alert stays active in Alertmanager unless it is sent again (ms): 5 minutes. */
export const FIRING_TTL_MS = 5 * 60_000;

/** An alert as Alertmanager's API v2 takes it (`endsAt` is set when it is sent). */
export interface Alert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** When the port opened (its `since`), ISO 8601. */
  startsAt: string;
  /** When it stops being active: now + {@link FIRING_TTL_MS} while firing, the close's time once resolved. */
  endsAt?: string;
  /** A link back to the port, when the listener knows its own URL. */
  generatorURL?: string;
}

/** The webhook's body: one transition of one alert. */
export interface WebhookPayload {
  version: 1;
  status: "firing" | "resolved";
  alert: Alert;
  /** The port as `GET /ports` listed it when the transition happened. */
  port: OpenPort;
  /** The id of the stored event that caused the transition (the port's latest event for a policy reload). */
  event_id: string;
}

/** The `process` of an open port as text: `comm (pid N, uid U): cmdline`, or "" when unknown. */
function processText(p: unknown): string {
  if (p === null || typeof p !== "object") return "";
  const { comm, pid, uid, cmdline } = p as Record<string, unknown>;
  const ids = [pid !== undefined ? `pid ${pid}` : "", uid !== undefined ? `uid ${uid}` : ""].filter(Boolean);
  const head = `${typeof comm === "string" ? comm : "?"}${ids.length ? ` (${ids.join(", ")})` : ""}`;
  return typeof cmdline === "string" && cmdline !== "" ? `${head}: ${cmdline}` : head;
}

/** The `container` label of a port: its name, else its id, else "" (the host itself). */
export function containerLabel(port: OpenPort): string {
  return port.container_name ?? port.container_id ?? "";
}

/** A one-line summary, e.g. "tcp/9229 open on 0.0.0.0 in container api on host web-1 (pids 123)". */
export function summaryOf(port: OpenPort): string {
  const where = port.addrs.length > 0 ? ` on ${port.addrs.join(", ")}` : "";
  const container = containerLabel(port);
  const inside = container !== "" ? ` in container ${container}` : "";
  const host = port.host ? ` on host ${port.host}` : "";
  const pids = port.pids.length > 0 ? ` (pid${port.pids.length > 1 ? "s" : ""} ${port.pids.join(", ")})` : "";
  return `${port.proto ?? "?"}/${port.port} open${where}${inside}${host}${pids}`;
}

/**
 * The alert of open port `port` whose verdict is `verdict` (an alert verdict; its severity defaults to
 * "warning" as the policy's does). `generatorURL` is added when `listenerUrl` is given: the port in the
 * listener's `GET /ports`.
 */
export function alertOf(port: OpenPort, verdict: Verdict, listenerUrl?: string): Alert {
  const alert: Alert = {
    labels: {
      alertname: ALERT_NAME,
      host: port.host ?? "",
      container: containerLabel(port),
      port: String(port.port),
      proto: port.proto ?? "",
      severity: verdict.severity ?? "warning",
    },
    annotations: {
      rule: verdict.rule ?? "(default)",
      description: verdict.description ?? "",
      summary: summaryOf(port),
      addrs: port.addrs.join(", "),
      process: processText(port.process),
    },
    startsAt: port.since,
  };
  if (listenerUrl) {
    const q = new URLSearchParams({ port: String(port.port) });
    if (port.proto) q.set("proto", port.proto);
    if (port.host) q.set("host", port.host);
    if (port.container_id) q.set("container", port.container_id);
    alert.generatorURL = `${listenerUrl.replace(/\/+$/, "")}/ports?${q}`;
  }
  return alert;
}

/**
 * A stable text of a label set (sorted `name=value` pairs), the same in every replica: the identity
 * Alertmanager deduplicates on, and part of the outbox's dedupe key.
 */
export function labelKey(labels: Record<string, string>): string {
  return Object.keys(labels).sort().map((k) => `${k}=${JSON.stringify(labels[k])}`).join(",");
}

const encoder = new TextEncoder();

/**
 * A short fingerprint of a label set: FNV-1a 64 of {@link labelKey}, 16 hex digits. The 64-bit product is
 * computed in two 32-bit halves (the FNV prime is 2^40 + 0x1b3), about 20 times faster than with BigInt.
 */
export function fingerprint(labels: Record<string, string>): string {
  let hi = 0xcbf29ce4, lo = 0x84222325;
  for (const b of encoder.encode(labelKey(labels))) {
    lo ^= b;
    const p = (lo >>> 0) * 0x1b3; // < 2^41: exact
    hi = (Math.imul(hi, 0x1b3) + Math.floor(p / 0x100000000) + (lo << 8)) >>> 0;
    lo = p >>> 0;
  }
  return hi.toString(16).padStart(8, "0") + lo.toString(16).padStart(8, "0");
}

/** One alert to send to Alertmanager: firing, or resolved at `endsAt`. */
export interface AlertmanagerItem {
  alert: Alert;
  status: "firing" | "resolved";
  /** For a resolved alert: when it ended (ISO 8601); default: the time of sending. */
  endsAt?: string;
}

/**
 * The body of `POST /api/v2/alerts`: firing alerts end at `now` + {@link FIRING_TTL_MS} (sent again before
 * then while they fire), resolved ones at their `endsAt` (never before `startsAt`, which Alertmanager
 * refuses). Items with equal labels collapse to the last one, in place of the first.
 */
export function alertmanagerPayload(items: readonly AlertmanagerItem[], now: number): Alert[] {
  const byLabels = new Map<string, Alert>();
  for (const { alert, status, endsAt } of items) {
    let end = status === "firing" ? new Date(now + FIRING_TTL_MS).toISOString() : endsAt ?? iso(now);
    if (Date.parse(end) < Date.parse(alert.startsAt)) end = alert.startsAt;
    const key = labelKey(alert.labels);
    byLabels.delete(key); // a later item about the same labels replaces the earlier one, in its place
    byLabels.set(key, { ...alert, endsAt: end });
  }
  return [...byLabels.values()];
}

/** The webhook body of one transition. */
export function webhookPayload(
  t: { status: "firing" | "resolved"; alert: Alert; port: OpenPort; eventId: string; endsAt?: string },
): WebhookPayload {
  const alert = t.status === "resolved" ? { ...t.alert, endsAt: t.endsAt ?? t.alert.endsAt } : t.alert;
  return { version: 1, status: t.status, alert, port: t.port, event_id: t.eventId };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
