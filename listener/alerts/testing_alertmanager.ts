/**
 * Test helper: a real Prometheus Alertmanager (Debian's `prometheus-alertmanager`, `ALERTMANAGER_BIN`
 * overrides) on a free loopback port, with a null receiver, clustering off and its storage in a temporary
 * directory. `close()` stops it and removes the directory.
 *
 * @example
 * ```ts
 * const reason = alertmanagerSkipReason();
 * if (reason) console.log(`skipped: ${reason}`);
 * const am = await startAlertmanager();
 * try {
 *   await am.alerts(); // GET /api/v2/alerts
 * } finally {
 *   await am.close();
 * }
 * ```
 * @module
 */
import { freePort } from "../../testing/port.ts";
import { stopChild } from "../../testing/process.ts";
import { waitUntil } from "../../infra/wait.ts";

/** The binary. */
export const ALERTMANAGER_BIN = Deno.env.get("ALERTMANAGER_BIN") ?? "/usr/bin/prometheus-alertmanager";

/** Why Alertmanager cannot be started here, or undefined. */
export function alertmanagerSkipReason(): string | undefined {
  try {
    if (Deno.statSync(ALERTMANAGER_BIN).isFile) return undefined;
  } catch { /* below */ }
  return `${ALERTMANAGER_BIN} not found (apt-get install prometheus-alertmanager, or set ALERTMANAGER_BIN)`;
}

/** An alert as Alertmanager's `GET /api/v2/alerts` lists it. */
export interface AmAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  fingerprint: string;
  status: { state: "active" | "suppressed" | "unprocessed"; silencedBy: string[]; inhibitedBy: string[] };
}

/** A running Alertmanager. */
export interface TestAlertmanager {
  /** Its base URL, `http://127.0.0.1:<port>` (what ALERTMANAGER_URL takes). */
  url: string;
  /** `GET /api/v2/alerts` (v0.25 lists alerts not yet resolved: active, suppressed or unprocessed). */
  alerts(): Promise<AmAlert[]>;
  /** Its last output lines. */
  log(): string;
  close(): Promise<void>;
}

const CONFIG = `route:
  receiver: "null"
receivers:
  - name: "null"
`;

/** Start Alertmanager; resolves once `/-/ready` answers 200 (deadline `readyMs`). */
export async function startAlertmanager(readyMs = 20_000): Promise<TestAlertmanager> {
  const dir = await Deno.makeTempDir({ prefix: "portwatch-am-" });
  await Deno.writeTextFile(`${dir}/alertmanager.yml`, CONFIG);
  const port = freePort();
  const child = new Deno.Command(ALERTMANAGER_BIN, {
    args: [
      `--config.file=${dir}/alertmanager.yml`,
      `--storage.path=${dir}/data`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--cluster.listen-address=", // empty: no clustering (no gossip port)
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let tail: string[] = [];
  const drain = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s.pipeThrough(new TextDecoderStream())) {
      tail.push(...chunk.split("\n").filter((l) => l !== ""));
      if (tail.length > 200) tail = tail.slice(-100);
    }
  };
  const drained = Promise.all([drain(child.stdout), drain(child.stderr)]).catch(() => {});
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const url = `http://127.0.0.1:${port}`;
  const close = async () => {
    await stopChild(child, "SIGTERM", 5000);
    await status;
    await drained;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    await waitUntil(
      () => `Alertmanager ready on ${url}:\n${tail.slice(-20).join("\n")}`,
      async () => {
        if (exited) throw new Error(`Alertmanager exited during start-up:\n${tail.slice(-20).join("\n")}`);
        try {
          const res = await fetch(`${url}/-/ready`);
          await res.body?.cancel();
          return res.ok;
        } catch {
          return false;
        }
      },
      readyMs,
      50,
    );
  } catch (e) {
    await close();
    throw e;
  }
  return {
    url,
    async alerts() {
      const res = await fetch(`${url}/api/v2/alerts`);
      if (!res.ok) throw new Error(`GET ${url}/api/v2/alerts: ${res.status} ${await res.text()}`);
      return await res.json() as AmAlert[];
    },
    log: () => tail.join("\n"),
    close,
  };
}
