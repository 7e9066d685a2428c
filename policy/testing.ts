/** Test fixtures for the policy: the example file, as users will write it, and an event. */
import type { PortEvent } from "../events/schema.ts";

/** An alert for a Node debugger port on any address, in any container; everything else allowed. */
export const NODE_DEBUGGER_POLICY = `rules:
  - name: no-node-debugger
    match: { port: "9229", addresses: any }
    action: alert
    severity: critical
default: allow
`;

/** The example plus learning per image and host over `window`, for alerts after it ends. */
export function learningPolicy(window: string): string {
  return NODE_DEBUGGER_POLICY.replace(
    "default: allow",
    `learn: { scope: image, per: host, window: ${window}, severity: warning }\ndefault: allow`,
  );
}

/** An open event of a Node debugger in a compose container; `over` replaces fields. */
export function testEvent(over: Partial<PortEvent> = {}): PortEvent {
  return {
    id: "01a25351-cbd6-7240-9a6e-d3b60fb0091a",
    event: "open",
    port: 9229,
    proto: "tcp",
    family: 4,
    addrs: ["0.0.0.0"],
    pids: [42],
    container_id: "dd774991a3acd55a",
    container_name: "web-1",
    image: "node:20",
    compose_project: "shop",
    compose_service: "web",
    source: "ebpf",
    observed_at: "2026-12-08T00:00:00.000Z",
    host: "edge-1",
    netns: 4026531840,
    process: { pid: 42, comm: "node", cmdline: "/usr/bin/node --inspect=0.0.0.0:9229 app.js", uid: 1000 },
    ...over,
  } as PortEvent;
}
