/**
 * Test helpers: the real listener as a subprocess, the one way every test, the fleet and the benchmarks start
 * it (by path: events/ imports nothing else of ours), and a scripted loopback HTTP peer for failure injection
 * (drop the connection, answer 503/429/413, forward to a listener). Every process and socket is closed by its
 * owner.
 * @module
 */

/** Re-exported for the callers that import it from here (docker/testing/live.ts). */
export { freePort } from "./port.ts";

const LISTENER_MAIN = new URL("../listener/main.ts", import.meta.url).pathname;

/** The line the listener prints on stdout once it listens; group 1 is its URL. */
export const LISTENING_LINE = /\{"listening":"([^"]+)"\}/;

/** How to run a listener: flags of `listener/main.ts` and of `deno run`. */
export interface ListenerCommandOptions {
  /** Port (default 0: any; the URL is in the {@link LISTENING_LINE}). */
  port?: number;
  /** More listener flags (`--fsync 0`, `--store-url ...`). */
  args?: string[];
  /** `deno run` flags before the program (V8 flags, `--inspect=...`). */
  denoFlags?: string[];
}

/**
 * The command line (`deno run --allow-all ... listener/main.ts --port P --log-path L ...`) of a listener; for
 * callers that run it under their own process tracking (the benchmarks), then wait for {@link LISTENING_LINE}.
 *
 * @example
 * ```ts
 * const [cmd, ...args] = listenerCommand("/tmp/l.log", { args: ["--fsync", "0"] });
 * ```
 */
export function listenerCommand(logPath: string, options: ListenerCommandOptions = {}): string[] {
  return [
    Deno.execPath(),
    "run",
    "--allow-all",
    ...(options.denoFlags ?? []),
    LISTENER_MAIN,
    "--port",
    String(options.port ?? 0),
    "--log-path",
    logPath,
    ...(options.args ?? []),
  ];
}

/** How to start a listener subprocess. */
export interface ListenerOptions extends ListenerCommandOptions {
  /** Environment over `LOG_LEVEL=error`. */
  env?: Record<string, string>;
  /** Rewrites the command, e.g. a network namespace's `ns.wrap` to run it inside. */
  wrap?: (cmd: string[]) => string[];
  /** Working directory. */
  cwd?: string;
  /** Start-up deadline (default 20 s), then SIGKILL. */
  startMs?: number;
  /** Its stderr: shown (default), dropped, or the last lines kept for {@link ListenerProc.log}. */
  stderr?: "inherit" | "null" | "tail";
}

/** A listener subprocess. */
export interface ListenerProc {
  url: string;
  port: number;
  logPath: string;
  pid: number;
  /** The last lines of its stderr (with `stderr: "tail"`; otherwise empty). */
  log(): string;
  /** SIGTERM and wait for exit; SIGKILL after 10 s, and then it throws. */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit: a crash. */
  kill9(): Promise<void>;
}

/**
 * Start `listener/main.ts` with its log at `logPath`; resolves once it prints {@link LISTENING_LINE}, throws
 * (naming the port, and with the stderr tail when kept) if it exits first or misses the deadline.
 *
 * @example
 * ```ts
 * const l = await startListener("/tmp/portwatcher.log", { env: { LISTENER_FSYNC: "0" } });
 * try {
 *   await fetch(`${l.url}/healthz`).then((r) => r.body?.cancel());
 * } finally {
 *   await l.stop();
 * }
 * ```
 */
export async function startListener(logPath: string, options: ListenerOptions = {}): Promise<ListenerProc> {
  const port = options.port ?? 0;
  const cmd = listenerCommand(logPath, options);
  const [program, ...args] = options.wrap ? options.wrap(cmd) : cmd;
  const tailed = options.stderr === "tail";
  const child = new Deno.Command(program, {
    args,
    cwd: options.cwd,
    env: { LOG_LEVEL: "error", ...options.env },
    stdin: "null",
    stdout: "piped",
    stderr: options.stderr === "null" ? "null" : tailed ? "piped" : "inherit",
  }).spawn();
  let tail: string[] = [];
  const tailing = tailed
    ? (async () => {
      try {
        for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
          tail.push(...chunk.split("\n").filter((l) => l !== ""));
          if (tail.length > 100) tail = tail.slice(-50);
        }
      } catch { /* killed */ }
    })()
    : Promise.resolve();
  const log = () => tail.join("\n");
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const kill = (signal: Deno.Signal) => {
    try {
      child.kill(signal);
    } catch { /* already gone */ }
  };
  const startMs = options.startMs ?? 20_000;
  let late = false;
  const deadline = setTimeout(() => {
    late = true;
    kill("SIGKILL");
  }, startMs);
  let buf = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        const why = late ? `did not listen within ${startMs} ms` : "exited before listening";
        throw new Error(`the listener ${why} (port ${port})${tailed ? `:\n${log()}` : ""}`);
      }
      buf += value;
      const m = LISTENING_LINE.exec(buf);
      if (!m) continue;
      // Keep draining stdout so the child never blocks on a full pipe.
      const drained = (async () => {
        try {
          while (!(await reader.read()).done) { /* discard */ }
        } catch { /* closed */ }
      })();
      const stopWith = async (signal: Deno.Signal) => {
        kill(signal);
        let escalated = false;
        const timer = setTimeout(() => {
          escalated = true;
          kill("SIGKILL");
        }, 10_000);
        await child.status;
        clearTimeout(timer);
        await drained;
        await tailing;
        if (escalated) throw new Error(`the listener did not stop within 10 s of ${signal}`);
      };
      const url = m[1];
      return {
        url,
        port: Number(new URL(url).port),
        logPath,
        pid: child.pid,
        log,
        stop: () => stopWith("SIGTERM"),
        kill9: () => stopWith("SIGKILL"),
      };
    }
  } catch (e) {
    kill("SIGKILL");
    await child.status;
    await reader.cancel().catch(() => {});
    await tailing;
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
