/**
 * What a target is (Alertmanager, the webhook) and how one POST's answer is read: 2xx delivered; 408, 429,
 * 5xx, a redirect or no answer at all (refused, reset, timeout) retried; any other 4xx refused for good (the
 * items are dead-lettered and the answer logged, never retried).
 * @module
 */
import type { QueuedAlert, TargetName } from "./queue.ts";

/** The outcome of one POST. */
export type SendOutcome =
  | { kind: "ok" }
  | { kind: "retry"; status?: number; error: string }
  | { kind: "dead"; status: number; error: string };

/** Where alerts go. */
export interface Target {
  readonly name: TargetName;
  /** The URL posted to. */
  readonly url: string;
  /** Most items per POST. */
  readonly batch: number;
  /** POST `items` (at most {@link batch}). */
  send(items: QueuedAlert[], signal?: AbortSignal): Promise<SendOutcome>;
}

/** Default time one POST may take (ms). */
export const SEND_TIMEOUT_MS = 10_000;

/** Read an answer: its status and (the start of) its body. */
export function outcomeOf(status: number, text: string): SendOutcome {
  if (status >= 200 && status < 300) return { kind: "ok" };
  const error = `HTTP ${status}: ${text.trim().slice(0, 500) || "(no body)"}`;
  if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
    return { kind: "dead", status, error };
  }
  return { kind: "retry", status, error };
}

/** `url` as logs show it: without its user and password, its query and its fragment. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return "(a URL that does not parse)";
  }
}

/** `url` without its credentials, and those as an Authorization header (fetch refuses them in the URL). */
function splitCredentials(url: string): { url: string; headers: Record<string, string> } {
  const u = new URL(url);
  if (u.username === "" && u.password === "") return { url, headers: {} };
  const basic = btoa(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`);
  u.username = "";
  u.password = "";
  return { url: u.href, headers: { authorization: `Basic ${basic}` } };
}

/**
 * POST `body` as JSON to `url` within `timeoutMs` (aborted early by `signal`); never throws: a network
 * failure or a timeout is an outcome to retry. Credentials in the URL (`https://user:pass@host/`) are sent
 * as HTTP basic authentication.
 */
export async function postJson(
  url: string,
  body: unknown,
  timeoutMs = SEND_TIMEOUT_MS,
  signal?: AbortSignal,
): Promise<SendOutcome> {
  const timeout = AbortSignal.timeout(timeoutMs);
  try {
    const target = splitCredentials(url);
    const res = await fetch(target.url, {
      method: "POST",
      headers: { "content-type": "application/json", "user-agent": "portwatch-listener", ...target.headers },
      body: JSON.stringify(body),
      signal: signal ? AbortSignal.any([timeout, signal]) : timeout,
    });
    const text = await res.text();
    return outcomeOf(res.status, text);
  } catch (e) {
    const why = timeout.aborted ? `no answer within ${timeoutMs} ms` : (e as Error).message;
    return { kind: "retry", error: `POST failed: ${why}` };
  }
}
