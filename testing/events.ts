/** Port events for tests: every field the contract requires, set to plain values. @module */
import type { PortEvent } from "../events/schema.ts";

/** An open of TCP `port` on host "h", netns 1, with `over` on top. */
export function portEventFixture(port: number, over: Record<string, unknown> = {}): PortEvent {
  return {
    id: crypto.randomUUID(),
    event: "open",
    port,
    proto: "tcp",
    family: 4,
    addrs: ["0.0.0.0"],
    pids: [1],
    container_id: null,
    container_name: null,
    source: "polling",
    observed_at: "2026-11-25T08:00:00.000Z",
    host: "h",
    netns: 1,
    ...over,
  } as PortEvent;
}
