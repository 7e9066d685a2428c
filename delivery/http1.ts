/**
 * A small HTTP/1.1 client for the delivery hot path: a POST over a kept-alive plain-TCP connection
 * (`Deno.connect`) is one write and, usually, one read. `fetch` costs 0.5-0.8 ms of CPU per POST on a small VM
 * (its Request, Headers and stream objects, and the pooled client behind them), ~2-3% of a core at the 30-50
 * reports a second of an eBPF engine under load; this costs about half. Plain `http:` only: HTTPS (a proxy's
 * CA, certificates) stays with `fetch`.
 *
 * One request per connection at a time; idle connections are kept for the next request. A request on a kept
 * connection that finds it closed by the server (an idle timeout, a restarted listener) before any answer is
 * sent again once on a new connection: the sink's POSTs carry event ids, so a repeat is harmless.
 * @module
 */

const enc = new TextEncoder();
const dec = new TextDecoder();

/** An answer: its status, headers (lower-case names) and body text. */
export interface Http1Answer {
  status: number;
  headers: Map<string, string>;
  text: string;
}

/** The connection ended before the answer began: the request may be sent again on a new one. */
class StaleConnection extends Error {}

/** The answer did not come within the time allowed. */
export class Http1TimeoutError extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
    this.name = "TimeoutError";
  }
}

/** Keep-alive HTTP/1.1 connections to one origin. */
export class Http1Client {
  #idle: Http1Connection[] = [];
  #busy = new Set<Http1Connection>();
  #closed = false;

  /**
   * @param url the origin to talk to; must be `http:`
   * @example
   * ```ts
   * const client = new Http1Client(new URL("http://127.0.0.1:8080/ingest"));
   * const answer = await client.post("/ingest", { "content-type": "application/x-ndjson" }, "{}\n", 2000);
   * client.close();
   * ```
   */
  constructor(readonly url: URL) {
    if (url.protocol !== "http:") throw new TypeError(`Http1Client speaks plain http, not ${url.protocol}`);
  }

  /**
   * POST `body` to `path` (with its query); rejects with {@link Http1TimeoutError} when the answer has not come
   * within `timeoutMs` (the connection is then closed). One timer per request, no AbortSignal: this runs for
   * every batch an engine reports.
   */
  async post(
    path: string,
    headers: Record<string, string>,
    body: string,
    timeoutMs: number,
  ): Promise<Http1Answer> {
    const request = requestBytes(this.url.host, path, headers, body);
    let conn: Http1Connection | undefined;
    let connecting: AbortController | undefined;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      connecting?.abort();
      conn?.close();
    }, timeoutMs);
    try {
      for (let attempt = 0;; attempt++) {
        if (this.#closed) throw new Error("the HTTP client is closed");
        const kept = this.#idle.pop();
        if (kept) conn = kept;
        else {
          connecting = new AbortController();
          conn = await Http1Connection.open(this.url, connecting.signal);
          connecting = undefined;
        }
        this.#busy.add(conn);
        try {
          const answer = await conn.exchange(request);
          if (conn.reusable && !this.#closed) this.#idle.push(conn);
          else conn.close();
          return answer;
        } catch (e) {
          conn.close();
          if (timedOut) throw new Http1TimeoutError(timeoutMs);
          // A kept connection the server had closed: once more on a new one.
          if (e instanceof StaleConnection && kept && attempt === 0) continue;
          throw e instanceof StaleConnection ? new Error(e.message) : e;
        } finally {
          this.#busy.delete(conn);
        }
      }
    } catch (e) {
      throw timedOut ? new Http1TimeoutError(timeoutMs) : e;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Close every connection: idle ones, and those of requests under way (which then fail). */
  close(): void {
    this.#closed = true;
    for (const c of [...this.#idle, ...this.#busy]) c.close();
    this.#idle = [];
  }
}

/** The request's bytes: head and body in one buffer (one write). */
function requestBytes(host: string, path: string, headers: Record<string, string>, body: string): Uint8Array {
  const payload = enc.encode(body);
  let head = `POST ${path} HTTP/1.1\r\nhost: ${host}\r\ncontent-length: ${payload.length}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    if (/[\r\n]/.test(name + value)) throw new TypeError(`header ${name} holds a line break`);
    head += `${name}: ${value}\r\n`;
  }
  const h = enc.encode(head + "\r\n");
  const all = new Uint8Array(h.length + payload.length);
  all.set(h);
  all.set(payload, h.length);
  return all;
}

/** Where `needle` (CR LF or CR LF CR LF) starts in `b` from `from`, or -1. */
function indexOfCrlf(b: Uint8Array, from: number, double: boolean): number {
  for (let i = from; i + (double ? 3 : 1) < b.length; i++) {
    if (b[i] === 13 && b[i + 1] === 10 && (!double || (b[i + 2] === 13 && b[i + 3] === 10))) return i;
  }
  return -1;
}

/** Most bytes of an answer's head; an answer larger than this is not a listener's. */
const MAX_HEAD = 64 * 1024;

class Http1Connection {
  reusable = true;
  #closed = false;
  #read = new Uint8Array(16 * 1024);
  /** Bytes read and not used yet. */
  #data = new Uint8Array(0);

  private constructor(readonly conn: Deno.TcpConn) {}

  static async open(url: URL, signal: AbortSignal): Promise<Http1Connection> {
    const conn = await Deno.connect({
      hostname: url.hostname.replace(/^\[(.*)\]$/, "$1"),
      port: Number(url.port || 80),
      signal,
    });
    conn.setNoDelay(true);
    return new Http1Connection(conn);
  }

  close(): void {
    this.reusable = false;
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.conn.close();
    } catch { /* already closed */ }
  }

  /** Read more; `answered`: whether any byte of the answer came already (else an end is a stale connection). */
  async #more(answered: boolean): Promise<void> {
    let n: number | null;
    try {
      n = await this.conn.read(this.#read);
    } catch (e) {
      if (!answered && !this.#closed) {
        throw new StaleConnection(`the connection failed: ${(e as Error).message}`);
      }
      throw e;
    }
    if (n === null) {
      const why = "the listener closed the connection before it answered";
      throw answered ? new Error(`${why} in full`) : new StaleConnection(why);
    }
    const joined = new Uint8Array(this.#data.length + n);
    joined.set(this.#data);
    joined.set(this.#read.subarray(0, n), this.#data.length);
    this.#data = joined;
  }

  async exchange(request: Uint8Array): Promise<Http1Answer> {
    try {
      for (let off = 0; off < request.length;) off += await this.conn.write(request.subarray(off));
    } catch (e) {
      throw new StaleConnection(`the connection failed: ${(e as Error).message}`);
    }
    let end: number;
    while ((end = indexOfCrlf(this.#data, 0, true)) < 0) {
      if (this.#data.length > MAX_HEAD) throw new Error(`an answer head over ${MAX_HEAD} bytes`);
      await this.#more(this.#data.length > 0);
    }
    const [statusLine, ...lines] = dec.decode(this.#data.subarray(0, end)).split("\r\n");
    this.#data = this.#data.subarray(end + 4);
    const m = /^HTTP\/1\.([01]) (\d{3})/.exec(statusLine);
    if (!m) throw new Error(`not an HTTP/1.x answer: ${JSON.stringify(statusLine.slice(0, 80))}`);
    const headers = new Map<string, string>();
    for (const line of lines) {
      const colon = line.indexOf(":");
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const connection = headers.get("connection")?.toLowerCase();
    if (connection === "close" || (m[1] === "0" && connection !== "keep-alive")) this.reusable = false;
    return { status: Number(m[2]), headers, text: await this.#body(headers) };
  }

  /** The answer's body, by its length, its chunks, or (neither) up to the connection's end. */
  async #body(headers: Map<string, string>): Promise<string> {
    const length = headers.get("content-length");
    if (length !== undefined) {
      const n = Number(length);
      if (!Number.isSafeInteger(n) || n < 0) throw new Error(`a content-length of ${JSON.stringify(length)}`);
      while (this.#data.length < n) await this.#more(true);
      const text = dec.decode(this.#data.subarray(0, n));
      this.#data = this.#data.subarray(n);
      return text;
    }
    if (headers.get("transfer-encoding")?.toLowerCase().includes("chunked")) {
      let text = "";
      for (;;) {
        let crlf: number;
        while ((crlf = indexOfCrlf(this.#data, 0, false)) < 0) await this.#more(true);
        const size = parseInt(dec.decode(this.#data.subarray(0, crlf)), 16);
        if (!Number.isSafeInteger(size) || size < 0) throw new Error("a malformed chunk size");
        this.#data = this.#data.subarray(crlf + 2);
        if (size === 0) {
          // the trailer section, ending with an empty line
          while ((crlf = indexOfCrlf(this.#data, 0, false)) !== 0) {
            if (crlf > 0) this.#data = this.#data.subarray(crlf + 2);
            else await this.#more(true);
          }
          this.#data = this.#data.subarray(2);
          return text;
        }
        while (this.#data.length < size + 2) await this.#more(true);
        text += dec.decode(this.#data.subarray(0, size));
        this.#data = this.#data.subarray(size + 2);
      }
    }
    this.reusable = false;
    let text = "";
    for (;;) {
      text += dec.decode(this.#data);
      this.#data = new Uint8Array(0);
      const n = await this.conn.read(this.#read);
      if (n === null) return text;
      this.#data = this.#read.slice(0, n);
    }
  }
}
