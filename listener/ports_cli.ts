/**
 * `deno task ports`: the open ports across the fleet, as `ss -ltnup` shows them for one host, from a listener
 * (LISTENER_URL). `--json` for machines, filters like the API's, `--watch` to follow the live stream: a line
 * per event, `+` an open, `~` a change of holders or addresses (the port stays open), `-` a close.
 * @module
 */
import { parseArgs } from "node:util";
import type { OpenPort } from "./ports_state.ts";
import { isPortEvent, portKey } from "./ui/ports_rule.js";
import { changeText } from "./ui/text.js";

const USAGE =
  `usage: deno task ports [--json] [--watch] [--unexpected] [--port P] [--proto tcp|udp] [--container C] [--host H]
  --unexpected: only ports the port policy (POLICY_PATH) says should not be open, with its severity and rule.
  Asks the listener at LISTENER_URL (default http://127.0.0.1:8080; LISTENER_TOKEN if it needs one).`;

/** A clear failure for the user (exit 1). */
export class PortsError extends Error {}

/** The base URL of the listener from LISTENER_URL (an ingest URL is accepted too). */
export function baseUrl(value: string | undefined): string {
  const raw = value?.trim() || "http://127.0.0.1:8080";
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new PortsError(
      `LISTENER_URL=${JSON.stringify(raw)} is not a URL: expected e.g. http://127.0.0.1:8080`,
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new PortsError(`LISTENER_URL=${JSON.stringify(raw)}: expected an http:// or https:// URL`);
  }
  return url.origin + url.pathname.replace(/\/ingest\/?$/, "").replace(/\/$/, "");
}

/** GET (or `method`) `path` from the listener, turning network and auth failures into clear errors. */
export async function get(base: string, path: string, token?: string, method = "GET"): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, {
      method,
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
  } catch (e) {
    throw new PortsError(
      `cannot reach the listener at ${base} (${(e as Error).message.replace(/^.*?: /, "")}): start it with ` +
        "`deno task start` (or `deno task listen`), or set LISTENER_URL",
    );
  }
  if (res.status === 401) {
    await res.body?.cancel();
    throw new PortsError(
      token
        ? `the listener at ${base} refused LISTENER_TOKEN (wrong token)`
        : `the listener at ${base} needs a token: set LISTENER_TOKEN`,
    );
  }
  if (!res.ok) {
    const body = await res.text();
    let message = body;
    try {
      message = JSON.parse(body).error ?? body;
    } catch { /* text */ }
    throw new PortsError(`the listener answered ${res.status}: ${message}`);
  }
  return res;
}

/** `0.0.0.0:5000,[::]:5000`, as ss writes them; `*:5000` without addresses. */
function endpoint(p: { addrs?: unknown; port?: unknown }): string {
  const addrs: unknown[] = Array.isArray(p.addrs) && p.addrs.length > 0 ? p.addrs : ["*"];
  return addrs.map((a) => `${String(a).includes(":") ? `[${a}]` : a}:${p.port}`).join(",");
}

function processOf(p: OpenPort): string {
  const proc = p.process as { comm?: string } | null;
  if (p.pids.length === 0) return "";
  return `users:(${p.pids.map((pid) => `("${proc?.comm ?? "?"}",pid=${pid})`).join(",")})`;
}

/** `critical no-node-debugger` for a port the policy alerts on, "" otherwise. */
function policyOf(p: OpenPort | Record<string, unknown>): string {
  const v = p.policy as { verdict?: string; rule?: string | null; severity?: string } | null | undefined;
  return v?.verdict === "alert" ? `${v.severity ?? "warning"} ${v.rule ?? "default"}` : "";
}

/**
 * The table, ss-style: Netid State Local Address:Port Host Container Process; a Policy column (severity and
 * rule) when a port is unexpected.
 */
export function formatTable(ports: OpenPort[]): string {
  const withPolicy = ports.some((p) => policyOf(p) !== "");
  const rows = ports.map((p) => [
    p.proto ?? "?",
    p.proto === "udp" ? "UNCONN" : "LISTEN",
    endpoint(p),
    p.host ?? "-",
    p.container_name ?? p.container_id?.slice(0, 12) ?? "-",
    ...(withPolicy ? [policyOf(p) || "-"] : []),
    processOf(p),
  ]);
  const head = [
    "Netid",
    "State",
    "Local Address:Port",
    "Host",
    "Container",
    ...(withPolicy ? ["Policy"] : []),
    "Process",
  ];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join("  ").trimEnd();
  return [line(head), ...rows.map(line)].join("\n");
}

const MARKS: Record<string, string> = { open: "+", change: "~", close: "-" };

/**
 * One `--watch` line: `+ tcp 0.0.0.0:5000 web pids 123` (open), `~ tcp 0.0.0.0:5000 web holders 123 → 456`
 * (change), `- tcp 0.0.0.0:5000 web pids 123` (close: the last holders); addresses as in the table.
 */
export function eventLine(e: Record<string, unknown>): string {
  const s = (v: unknown) => (typeof v === "string" ? v : undefined);
  const where = s(e.container_name) ?? s(e.container_id)?.slice(0, 12) ?? s(e.host) ?? "-";
  let who: string;
  if (e.event === "change") who = changeText(e);
  else {
    const pids = e.event === "open" ? e.pids : e.last_pids;
    who = Array.isArray(pids) && pids.length > 0 ? `pids ${pids.join(",")}` : "";
  }
  const alert = policyOf(e);
  return `${MARKS[String(e.event)] ?? "?"} ${e.proto ?? "?"} ${endpoint(e)} ${where} ${who}${
    alert ? ` [${alert}]` : ""
  }`.trimEnd();
}

/** Run the command; resolves with the exit code. */
export async function runPorts(args: string[], env = Deno.env): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        json: { type: "boolean" },
        watch: { type: "boolean" },
        unexpected: { type: "boolean" },
        port: { type: "string" },
        proto: { type: "string" },
        container: { type: "string" },
        host: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }));
  } catch (e) {
    console.error(`ports: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  try {
    const base = baseUrl(env.get("LISTENER_URL"));
    const token = env.get("LISTENER_TOKEN") || undefined;
    const q = new URLSearchParams();
    for (const k of ["port", "proto", "container", "host"] as const) {
      if (values[k]) q.set(k, values[k] as string);
    }
    const ports = new URLSearchParams(q);
    if (values.unexpected) ports.set("unexpected", "1");
    // With --watch, the newest event id first: the stream resumes from it, so no change made between reading
    // the table and opening the stream is missed.
    const newest = values.watch
      ? ((await (await get(base, "/events?limit=1", token)).json()) as { events: { id: string }[] }).events[0]
        ?.id
      : undefined;
    const open = (await (await get(base, `/ports?${ports}`, token)).json() as { ports: OpenPort[] }).ports;
    console.log(values.json ? JSON.stringify(open) : formatTable(open));
    if (!values.watch) return 0;
    // --unexpected --watch: opens and changes the policy alerts on, and the closes of those ports.
    const alerting = new Set(open.map(portKey));
    if (newest) q.set("last_event_id", newest);
    const res = await get(base, `/events/stream?${q}`, token);
    let buf = "";
    for await (const chunk of res.body!.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let sep: number;
      while ((sep = buf.indexOf("\n\n")) !== -1) {
        const data = buf.slice(0, sep).split("\n").filter((l) => l.startsWith("data:")).map((l) =>
          l.slice(5).trim()
        )
          .join("");
        buf = buf.slice(sep + 2);
        if (!data) continue;
        const e = JSON.parse(data);
        if (!isPortEvent(e)) continue;
        if (values.unexpected) {
          const key = portKey(e);
          const was = alerting.has(key);
          if (e.event === "close" || policyOf(e) === "") alerting.delete(key);
          else alerting.add(key);
          if (!was && !alerting.has(key)) continue;
        }
        console.log(values.json ? data : eventLine(e));
      }
    }
    return 0;
  } catch (e) {
    if (e instanceof PortsError) {
      console.error(`ports: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

if (import.meta.main) Deno.exit(await runPorts(Deno.args));
