/**
 * The ports open now, derived from the event log: an `open` adds (or refreshes) an entry, a `close` removes it.
 * One entry per (host, container, network namespace, proto, port).
 * @module
 */
import { type EventFilter, matches } from "./filter.ts";

/** One port open now. */
export interface OpenPort {
  host: string | null;
  container_id: string | null;
  container_name: string | null;
  /** The container's image as given, when the watcher read it (null for older watchers and hosts). */
  image: string | null;
  /** Compose's project and service of the container, when it is a compose one. */
  compose_project: string | null;
  compose_service: string | null;
  netns: number | null;
  proto: string | null;
  port: number;
  family: number | null;
  addrs: string[];
  pids: number[];
  process: unknown;
  source: string | null;
  /** When it opened: the watcher's `observed_at`, else the listener's `ts`. */
  since: string;
  /** Listener time of the latest event about it. */
  ts: string;
  /** Id of the latest event about it. */
  event_id: string;
}

const str = (v: unknown): string | null => (typeof v === "string" ? v : null);
const num = (v: unknown): number | null => (typeof v === "number" ? v : null);

/** Key of the port a record is about. */
export function portKey(r: Record<string, unknown>): string {
  return `${r.host ?? ""}\u0000${r.container_id ?? ""}\u0000${r.netns ?? ""}\u0000${
    r.proto ?? ""
  }\u0000${r.port}`;
}

/** One open port with the parts of its key, as the record gave them (absent as ""). */
interface Held {
  host: unknown;
  container_id: unknown;
  netns: unknown;
  proto: unknown;
  open: OpenPort;
}

/**
 * The open-port table: by port number, then a short list of (host, container, netns, proto); an event finds its
 * entry without building a key string.
 */
export class PortsState {
  #byPort = new Map<number, Held[]>();
  #size = 0;

  /** Apply one stored record; records that are not port events are ignored. */
  apply(r: Record<string, unknown>): void {
    if (typeof r.port !== "number" || (r.event !== "open" && r.event !== "close")) return;
    const host = r.host ?? "";
    const containerId = r.container_id ?? "";
    const netns = r.netns ?? "";
    const proto = r.proto ?? "";
    const held = this.#byPort.get(r.port);
    let at = -1;
    if (held) {
      for (let i = 0; i < held.length; i++) {
        const h = held[i];
        if (h.host === host && h.container_id === containerId && h.netns === netns && h.proto === proto) {
          at = i;
          break;
        }
      }
    }
    if (r.event === "close") {
      if (at >= 0) {
        held!.splice(at, 1);
        if (held!.length === 0) this.#byPort.delete(r.port);
        this.#size--;
      }
      return;
    }
    const ts = String(r.ts);
    if (at >= 0) {
      // Refreshed in place: no new entry for a port that is already open (the common case under load).
      const prev = held![at].open;
      prev.host = str(r.host);
      prev.container_id = str(r.container_id);
      prev.container_name = str(r.container_name);
      prev.image = str(r.image);
      prev.compose_project = str(r.compose_project);
      prev.compose_service = str(r.compose_service);
      prev.netns = num(r.netns);
      prev.proto = str(r.proto);
      prev.family = num(r.family);
      prev.addrs = Array.isArray(r.addrs) ? r.addrs as string[] : [];
      prev.pids = Array.isArray(r.pids) ? r.pids as number[] : [];
      prev.process = r.process ?? null;
      prev.source = str(r.source);
      prev.ts = ts;
      prev.event_id = String(r.id);
      return;
    }
    const open: OpenPort = {
      host: str(r.host),
      container_id: str(r.container_id),
      container_name: str(r.container_name),
      image: str(r.image),
      compose_project: str(r.compose_project),
      compose_service: str(r.compose_service),
      netns: num(r.netns),
      proto: str(r.proto),
      port: r.port,
      family: num(r.family),
      addrs: Array.isArray(r.addrs) ? r.addrs as string[] : [],
      pids: Array.isArray(r.pids) ? r.pids as number[] : [],
      process: r.process ?? null,
      source: str(r.source),
      since: str(r.observed_at) ?? ts,
      ts,
      event_id: String(r.id),
    };
    const entry: Held = { host, container_id: containerId, netns, proto, open };
    if (held) held.push(entry);
    else this.#byPort.set(r.port, [entry]);
    this.#size++;
  }

  /** Open ports that match `filter` (time bounds apply to when they opened), sorted by host, container, port. */
  list(filter: EventFilter = {}): OpenPort[] {
    const { since, until, event: _e, sources: _s, ...rest } = filter;
    const out: OpenPort[] = [];
    for (const held of this.#byPort.values()) {
      for (const { open: p } of held) {
        if (!matches(p as unknown as Record<string, unknown>, rest)) continue;
        if (since && p.since < since) continue;
        if (until && p.since >= until) continue;
        out.push(p);
      }
    }
    return out.sort((a, b) =>
      (a.host ?? "").localeCompare(b.host ?? "") ||
      (a.container_name ?? a.container_id ?? "").localeCompare(b.container_name ?? b.container_id ?? "") ||
      (a.proto ?? "").localeCompare(b.proto ?? "") || a.port - b.port
    );
  }

  /** Number of open ports. */
  get size(): number {
    return this.#size;
  }
}
