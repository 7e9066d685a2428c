/**
 * Test helpers of the alerts: an open port and stored records as the store gives them, and a loopback HTTP
 * target that records every POST and answers as scripted (503s, then 200).
 * @module
 */
import type { OpenPort } from "../ports_state.ts";

/** An open port as GET /ports lists it; `over` replaces fields. */
export function openPortFixture(over: Partial<OpenPort> = {}): OpenPort {
  return {
    host: "web-1",
    container_id: "3f4e1c2b9a7d",
    container_name: "api",
    image: "node:20",
    compose_project: null,
    compose_service: null,
    netns: 4026532000,
    proto: "tcp",
    port: 9229,
    family: 4,
    addrs: ["0.0.0.0"],
    pids: [123],
    process: { pid: 123, comm: "node", cmdline: "node --inspect=0.0.0.0:9229 app.js", uid: 1000 },
    source: "polling",
    policy: { verdict: "alert", rule: "no-node-debugger", severity: "critical" },
    since: "2026-12-08T10:00:00.000Z",
    ts: "2026-12-08T10:00:00.100Z",
    event_id: "01a25351-cbd6-7240-9a6e-d3b60fb0091a",
    ...over,
  };
}

/** The no-node-debugger rule's verdict. */
export const CRITICAL = { verdict: "alert", rule: "no-node-debugger", severity: "critical" } as const;
/** The default's verdict. */
export const ALLOW = { verdict: "allow", rule: null } as const;

let n = 0;
const BASE = Date.now() - 3_600_000;
/**
 * A stored port event (open by default, the Node debugger in container api, judged critical); each one a
 * second after the one before, from an hour ago.
 */
export function record(over: Record<string, unknown> = {}): Record<string, unknown> {
  n++;
  const at = new Date(BASE + n * 1000).toISOString();
  return {
    ts: at,
    id: `019b0000-0000-7000-8000-${String(n).padStart(12, "0")}`,
    event: "open",
    port: 9229,
    proto: "tcp",
    family: 4,
    addrs: ["0.0.0.0"],
    pids: [123],
    container_id: "3f4e1c2b9a7d",
    container_name: "api",
    source: "polling",
    observed_at: at,
    host: "web-1",
    netns: 4026532000,
    policy: CRITICAL,
    ...over,
  };
}

/** One POST the target received. */
export interface Received {
  path: string;
  body: unknown;
  status: number;
  /** Its Authorization header. */
  authorization: string | null;
}

/** A loopback HTTP target. */
export interface CaptureTarget {
  url: string;
  /** Every POST, in order, with the status it was answered. */
  received: Received[];
  /** The status the next POSTs get (default 200). */
  status: number;
  close(): Promise<void>;
}

/** Start a loopback server that records POSTs and answers `status` (changeable: `target.status = 200`). */
export function captureTarget(status = 200, port = 0): CaptureTarget {
  const target: CaptureTarget = {
    url: "",
    received: [],
    status,
    close: () => server.shutdown(),
  };
  const server = Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, async (req) => {
    const body = await req.json().catch(() => null);
    const answer = target.status;
    target.received.push({
      path: new URL(req.url).pathname,
      body,
      status: answer,
      authorization: req.headers.get("authorization"),
    });
    return new Response(answer < 300 ? "{}" : `{"error":"scripted ${answer}"}`, { status: answer });
  });
  target.url = `http://127.0.0.1:${server.addr.port}`;
  return target;
}
