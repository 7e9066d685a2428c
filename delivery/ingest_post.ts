/**
 * One POST of NDJSON to the listener's `/ingest`, and what its answer means (ingest_answer.ts): over the lean
 * HTTP/1.1 client for plain `http:` (http1.ts: about half fetch's CPU per POST), over `fetch` for `https:`.
 * Never throws: a failure is an {@link Attempt} to retry. `close()` ends what is on the wire.
 * @module
 */
import { answerOf, type Attempt } from "./ingest_answer.ts";
import { Http1Client } from "./http1.ts";

/** POSTs to one ingest URL. */
export class IngestPoster {
  #client = Deno.createHttpClient({});
  #http1?: Http1Client;
  #path: string;
  #closing = new AbortController();

  /**
   * @param url the ingest URL
   * @param token the bearer token, if any
   * @param timeoutMs time allowed for one POST, answer included
   * @param transport "http1" (plain http only; the default there) or "fetch" (the default for https)
   */
  constructor(
    readonly url: URL,
    readonly token: string | undefined,
    readonly timeoutMs: number,
    transport?: "http1" | "fetch",
  ) {
    transport ??= url.protocol === "http:" ? "http1" : "fetch";
    this.#path = url.pathname + url.search;
    if (transport === "http1") this.#http1 = new Http1Client(url);
  }

  /** True once close() was called. */
  get closing(): boolean {
    return this.#closing.signal.aborted;
  }

  #headers(): Record<string, string> {
    const headers: Record<string, string> = { "content-type": "application/x-ndjson" };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    return headers;
  }

  /** One POST of NDJSON `lines`. */
  async post(lines: string[]): Promise<Attempt> {
    const body = lines.join("\n") + "\n";
    if (this.#http1) {
      try {
        const answer = await this.#http1.post(this.#path, this.#headers(), body, this.timeoutMs);
        return answerOf(answer.status, answer.text, answer.headers.get("retry-after") ?? null);
      } catch (e) {
        return {
          kind: "retry",
          failure: { config: false, error: this.closing ? "closing" : (e as Error).message },
        };
      }
    }
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), this.timeoutMs);
    const signal = AbortSignal.any([timeout.signal, this.#closing.signal]);
    try {
      // The abort settles fetch and the body read; this race is the backstop should either ever not settle
      // (a send that never resolves would stall the sink for good).
      const aborted = new Promise<never>((_, reject) => {
        signal.addEventListener("abort", () => reject(signal.reason), { once: true });
      });
      aborted.catch(() => {});
      const request = fetch(this.url, {
        method: "POST",
        headers: this.#headers(),
        body,
        redirect: "manual",
        signal,
        client: this.#client,
      });
      request.catch(() => {}); // when the race below settled first
      const res = await Promise.race([request, aborted]);
      const reading = res.text();
      reading.catch(() => {});
      const text = await Promise.race([reading, aborted]);
      return answerOf(res.status, text, res.headers.get("retry-after"));
    } catch (e) {
      const error = timeout.signal.aborted
        ? `no answer within ${this.timeoutMs} ms`
        : this.closing
        ? "closing"
        : (e as Error).message;
      return { kind: "retry", failure: { config: false, error } };
    } finally {
      clearTimeout(timer);
    }
  }

  /** End what is on the wire (fetch's abort, the lean client's connections); later POSTs fail as "closing". */
  close(): void {
    this.#closing.abort();
    this.#http1?.close();
  }

  /** Free the fetch client (after the last POST). */
  dispose(): void {
    this.#client.close();
  }
}
