/**
 * `just verify-suite` / `just verify-port`: cases run with the testers inside the stack's containers, judged
 * from the listener's query API (GET /events), not from grep. Prints PASS/FAIL per case.
 * @module
 */
import type { PortEvent } from "../events/schema.ts";

/** One verification case's outcome. */
export interface CaseResult {
  name: string;
  pass: boolean;
  detail: string;
}

type Stored = PortEvent & { ts: string };

/** Events stored for `port` (optionally in one container; since `since`, ISO, when given), oldest first. */
export async function eventsFor(
  base: string,
  port: number,
  since?: string,
  container?: string,
): Promise<Stored[]> {
  const q = new URLSearchParams({ port: String(port), order: "asc", limit: "1000" });
  if (since) q.set("since", since);
  if (container) q.set("container", container);
  const res = await fetch(`${base}/events?${q}`);
  if (!res.ok) throw new Error(`GET /events answered ${res.status}: ${await res.text()}`);
  return (await res.json()).events;
}

/** Wait until `check` passes on the stored events of `port`, or the deadline; returns the verdict. */
export async function expectEvents(
  base: string,
  name: string,
  port: number,
  since: string,
  container: string,
  check: (events: Stored[]) => string | undefined,
  ms = 15_000,
): Promise<CaseResult> {
  const end = Date.now() + ms;
  let problem = "no events yet";
  while (Date.now() < end) {
    const events = await eventsFor(base, port, since, container);
    const p = check(events);
    if (p === undefined) {
      return { name, pass: true, detail: events.map((e) => `${e.event}/${e.source}`).join(" ") };
    }
    problem = p;
    await new Promise((r) => setTimeout(r, 200));
  }
  return { name, pass: false, detail: problem };
}

/** The check for "opened once (and closed once, when `closed`), in `container`". */
export function openedAndClosed(container: string, closed: boolean) {
  return (events: Stored[]): string | undefined => {
    const opens = events.filter((e) => e.event === "open");
    const closes = events.filter((e) => e.event === "close");
    if (opens.length !== 1) return `${opens.length} open events (want 1)`;
    if (opens[0].container_name !== container) {
      return `open attributed to ${opens[0].container_name}, not ${container}`;
    }
    if (!opens[0].container_id) return "open has no container_id";
    if (closed && closes.length !== 1) return `${closes.length} close events (want 1)`;
    if (!closed && closes.length !== 0) return `${closes.length} close events (want none yet)`;
    return undefined;
  };
}
