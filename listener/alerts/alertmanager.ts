/**
 * Prometheus Alertmanager as a target (API v2: `POST <ALERTMANAGER_URL>/api/v2/alerts`, a JSON array of
 * alerts). Queued transitions go in batches; {@link AlertmanagerTarget.refresh} sends every firing alert
 * again, as Prometheus does, since Alertmanager resolves an alert whose `endsAt` has passed.
 *
 * @example
 * ```ts
 * const am = new AlertmanagerTarget("http://127.0.0.1:9093");
 * await am.send([item]); // { kind: "ok" }
 * ```
 * @module
 */
import { type Alert, alertmanagerPayload } from "./alert.ts";
import type { QueuedAlert } from "./queue.ts";
import { postJson, SEND_TIMEOUT_MS, type SendOutcome, type Target } from "./target.ts";

/** The API path appended to ALERTMANAGER_URL. */
export const ALERTS_PATH = "/api/v2/alerts";

/** Alertmanager at a base URL such as `http://127.0.0.1:9093`. */
export class AlertmanagerTarget implements Target {
  readonly name = "alertmanager";
  readonly url: string;
  readonly batch = 100;

  constructor(baseUrl: string, readonly timeoutMs = SEND_TIMEOUT_MS) {
    this.url = `${baseUrl.replace(/\/+$/, "")}${ALERTS_PATH}`;
  }

  /** POST queued transitions: firing ones end 5 minutes from now, resolved ones at their end. */
  send(items: QueuedAlert[], signal?: AbortSignal): Promise<SendOutcome> {
    const body = alertmanagerPayload(
      items.map((i) => ({ alert: i.alert, status: i.status, endsAt: i.ends_at })),
      Date.now(),
    );
    return postJson(this.url, body, this.timeoutMs, signal);
  }

  /** POST firing `alerts` again (their end moves 5 minutes ahead); a resolve is sent with `resolved`. */
  refresh(alerts: Alert[], signal?: AbortSignal): Promise<SendOutcome> {
    return postJson(
      this.url,
      alertmanagerPayload(alerts.map((alert) => ({ alert, status: "firing" })), Date.now()),
      this.timeoutMs,
      signal,
    );
  }

  /** POST resolves directly (not queued), e.g. after a refresh that may have come after a queued resolve. */
  resolve(items: { alert: Alert; endsAt?: string }[], signal?: AbortSignal): Promise<SendOutcome> {
    return postJson(
      this.url,
      alertmanagerPayload(items.map((i) => ({ ...i, status: "resolved" })), Date.now()),
      this.timeoutMs,
      signal,
    );
  }
}
