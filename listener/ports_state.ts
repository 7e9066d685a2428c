/**
 * The ports open now, derived from the event log. The rule (an `open` adds or refreshes an entry, a
 * `change` refreshes its holders and addresses, a `close` removes it; one entry per host, container, network
 * namespace, proto and port) is listener/ui/ports_rule.js, shared with the live page; this adds the API's
 * filtered, sorted listing.
 * @module
 */
import { type EventFilter, matches } from "./filter.ts";
import { type OpenPort, portKey, PortTable } from "./ui/ports_rule.js";

export { type OpenPort, portKey };

/** The open-port table of the file store (and of anything that reads the log). */
export class PortsState extends PortTable {
  /** Open ports that match `filter` (time bounds apply to when they opened), sorted by host, container, port. */
  list(filter: EventFilter = {}): OpenPort[] {
    const { since, until, event: _e, sources: _s, ...rest } = filter;
    const out: OpenPort[] = [];
    for (const p of this.values()) {
      if (!matches(p as unknown as Record<string, unknown>, rest)) continue;
      if (since && p.since < since) continue;
      if (until && p.since >= until) continue;
      out.push(p);
    }
    return out.sort(byPlace);
  }
}

/** The order of `GET /ports`: host, container (name, else id), proto, port. */
export function byPlace(a: OpenPort, b: OpenPort): number {
  return (a.host ?? "").localeCompare(b.host ?? "") ||
    (a.container_name ?? a.container_id ?? "").localeCompare(b.container_name ?? b.container_id ?? "") ||
    (a.proto ?? "").localeCompare(b.proto ?? "") || a.port - b.port;
}
