/**
 * Test helpers for delivery: the real listener as a subprocess (started by path, events/ imports nothing
 * else of ours), and a scripted loopback HTTP peer for failure injection (drop the connection, answer
 * 503/429/413, forward to a listener). Loopback only; every process and socket is closed by its owner.
 * @module
 */

export { waitUntil } from "./wait.ts";

const LISTENER_MAIN = new URL("../listener/main.ts", import.meta.url).pathname;

/** A free loopback TCP port (bound, read, released). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** A listener subprocess. */
export interface ListenerProc {
  url: string;
  port: number;
  logPath: string;
  /** SIGTERM and wait for exit. */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit: a crash. */
  kill9(): Promise<void>;
}

/** Start `listener/main.ts` on `port` (0: any) with its log at `logPath`; resolves once it listens (20 s). */
export async function startListener(
  logPath: string,
  port = 0,
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<ListenerProc> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", LISTENER_MAIN, "--port", String(port), "--log-path", logPath, ...args],
    env: { LOG_LEVEL: "error", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const kill = (signal: Deno.Signal) => {
    try {
      child.kill(signal);
    } catch { /* already gone */ }
  };
  const deadline = setTimeout(() => kill("SIGKILL"), 20_000);
  let buf = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the listener exited before listening (port ${port})`);
      buf += value;
      const m = /\{"listening":"([^"]+)"\}/.exec(buf);
      if (!m) continue;
      const drained = (async () => {
        try {
          while (!(await reader.read()).done) { /* discard */ }
        } catch { /* closed */ }
      })();
      const stopWith = async (signal: Deno.Signal) => {
        kill(signal);
        const timer = setTimeout(() => kill("SIGKILL"), 10_000);
        await child.status;
        clearTimeout(timer);
        await drained;
      };
      const url = m[1];
      return {
        url,
        port: Number(new URL(url).port),
        logPath,
        stop: () => stopWith("SIGTERM"),
        kill9: () => stopWith("SIGKILL"),
      };
    }
  } catch (e) {
    kill("SIGKILL");
    await child.status;
    await reader.cancel().catch(() => {});
    throw e;
  } finally {
    clearTimeout(deadline);
  }
}

/** The ids in a listener log (JSON lines), in log order. */
export async function loggedIds(logPath: string): Promise<string[]> {
  const text = await Deno.readTextFile(logPath).catch(() => "");
  return text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l).id as string);
}

/** One request as the scripted peer read it. */
export interface PeerRequest {
  /** 1 for the first request the peer got. */
  n: number;
  at: number;
  method: string;
  path: string;
  headers: Headers;
  body: string;
}

/** What the peer does with a request: answer, or close the connection without a word. */
export type PeerAction = { status: number; headers?: Record<string, string>; body?: string } | "drop";

/** A scripted HTTP/1.1 peer on loopback. */
export interface ScriptedPeer {
  url: string;
  port: number;
  /** Every request received, in order. */
  requests: PeerRequest[];
  close(): Promise<void>;
}

/** Forward `req` to `base` (e.g. a listener) and return its answer as a {@link PeerAction}. */
export async function forward(
  base: string,
  req: PeerRequest,
): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  const res = await fetch(new URL(req.path, base), {
    method: req.method,
    headers: req.headers,
    body: req.body,
  });
  const headers: Record<string, string> = {};
  for (const k of ["content-type", "retry-after"]) {
    const v = res.headers.get(k);
    if (v !== null) headers[k] = v;
  }
  return { status: res.status, headers, body: await res.text() };
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const REASONS: Record<number, string> = {
  200: "OK",
  413: "Payload Too Large",
  422: "Unprocessable",
  429: "Too Many",
};

/**
 * A raw-TCP HTTP/1.1 server on 127.0.0.1 (`port` 0: any) whose `script` decides each answer; one request
 * per connection (answers carry `Connection: close`), so "drop" loses exactly that response.
 */
export function scriptedPeer(
  script: (req: PeerRequest) => PeerAction | Promise<PeerAction>,
  port = 0,
): ScriptedPeer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  const requests: PeerRequest[] = [];
  const conns = new Set<Deno.Conn>();
  const handlers = new Set<Promise<void>>();
  const handle = async (conn: Deno.Conn) => {
    try {
      let buf = new Uint8Array(0);
      const chunk = new Uint8Array(64 * 1024);
      let headEnd = -1;
      let need = Infinity;
      while (buf.length < need) {
        const n = await conn.read(chunk);
        if (n === null) return;
        const next = new Uint8Array(buf.length + n);
        next.set(buf);
        next.set(chunk.subarray(0, n), buf.length);
        buf = next;
        if (headEnd < 0) {
          const text = dec.decode(buf);
          const i = text.indexOf("\r\n\r\n");
          if (i < 0) continue;
          headEnd = enc.encode(text.slice(0, i + 4)).length;
          const m = /content-length:\s*(\d+)/i.exec(text.slice(0, i));
          need = headEnd + (m ? Number(m[1]) : 0);
        }
      }
      const head = dec.decode(buf.subarray(0, headEnd)).split("\r\n");
      const [method, path] = head[0].split(" ");
      const headers = new Headers();
      for (const line of head.slice(1)) {
        const c = line.indexOf(":");
        if (c > 0) headers.append(line.slice(0, c).trim(), line.slice(c + 1).trim());
      }
      const req: PeerRequest = {
        n: requests.length + 1,
        at: Date.now(),
        method,
        path,
        headers,
        body: dec.decode(buf.subarray(headEnd, need)),
      };
      requests.push(req);
      const action = await script(req);
      if (action === "drop") return;
      const body = enc.encode(action.body ?? "");
      const lines = [
        `HTTP/1.1 ${action.status} ${REASONS[action.status] ?? "Status"}`,
        `content-length: ${body.length}`,
        "connection: close",
        ...Object.entries({ "content-type": "application/json", ...action.headers }).map(([k, v]) =>
          `${k}: ${v}`
        ),
      ];
      const out = new Uint8Array([...enc.encode(lines.join("\r\n") + "\r\n\r\n"), ...body]);
      let off = 0;
      while (off < out.length) off += await conn.write(out.subarray(off));
    } catch {
      // the client went away
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch { /* closed */ }
    }
  };
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        conns.add(conn);
        const h = handle(conn);
        handlers.add(h);
        h.finally(() => handlers.delete(h));
      }
    } catch { /* listener closed */ }
  })();
  const actualPort = (listener.addr as Deno.NetAddr).port;
  return {
    url: `http://127.0.0.1:${actualPort}`,
    port: actualPort,
    requests,
    async close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await accepting;
      await Promise.all([...handlers]);
    },
  };
}
