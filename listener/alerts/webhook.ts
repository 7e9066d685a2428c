/**
 * The generic JSON webhook as a target (ALERT_WEBHOOK_URL): one POST per transition, body
 * `{version: 1, status: "firing"|"resolved", alert, port, event_id}` (alert.ts: WebhookPayload). A receiver
 * may see a transition twice (a retry whose answer was lost): `event_id` and `status` identify it.
 *
 * @example
 * ```ts
 * const hook = new WebhookTarget("https://hooks.example.com/portwatch");
 * await hook.send([item]);
 * ```
 * @module
 */
import { webhookPayload } from "./alert.ts";
import type { QueuedAlert } from "./queue.ts";
import { postJson, SEND_TIMEOUT_MS, type SendOutcome, type Target } from "./target.ts";

/** A webhook URL. */
export class WebhookTarget implements Target {
  readonly name = "webhook";
  readonly batch = 1;

  constructor(readonly url: string, readonly timeoutMs = SEND_TIMEOUT_MS) {}

  /** POST the first item (the batch is one). */
  send(items: QueuedAlert[], signal?: AbortSignal): Promise<SendOutcome> {
    const [i] = items;
    const body = webhookPayload({
      status: i.status,
      alert: i.alert,
      port: i.port,
      eventId: i.event_id,
      endsAt: i.ends_at,
    });
    return postJson(this.url, body, this.timeoutMs, signal);
  }
}
