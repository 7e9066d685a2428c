/**
 * The simulated truth of one host: its containers, the ports open in each, and the open/close events a real
 * watcher of that host would emit as they change. Pure apart from the ids (UUIDv7, as real watchers make
 * them) and the clock passed in; randomness comes from a seeded {@link Rng}, so a run can be repeated.
 *
 * Traffic shape: each host keeps about `targetOpen` ports open. A port is either a long-lived service (web
 * servers, databases, DNS; rarely closes, and then is restarted later) or short-lived (ephemeral ports of
 * jobs and tests). Both TCP and UDP, IPv4, IPv6 and dual-stack; some on the host itself (no container).
 * @module
 */
import { uuidv7 } from "../events/id.ts";
import type { PortEvent, Source } from "../events/schema.ts";

/** A small fast seeded PRNG (mulberry32): numbers in [0, 1). */
export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  /** The next number in [0, 1). */
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  /** One element of `list`. */
  pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.next() * list.length)];
  }
  /** `n` random hex characters. */
  hex(n: number): string {
    let s = "";
    for (let i = 0; i < n; i++) s += "0123456789abcdef"[Math.floor(this.next() * 16)];
    return s;
  }
}

/** A container of a simulated host (or the host itself: id and name null). */
export interface SimContainer {
  id: string | null;
  name: string | null;
  netns: number;
}

/** A port open in the simulated truth: what the last `open` event said. */
export interface SimPort {
  key: string;
  long: boolean;
  event: PortEvent;
}

/** The identity of an open port: what the listener's /ports keys on. */
export function truthKey(
  host: string,
  containerId: string | null,
  netns: number | null,
  proto: string,
  port: number,
): string {
  return `${host}|${containerId ?? ""}|${netns ?? ""}|${proto}|${port}`;
}

/** Long-lived services: port, protocol, command. */
const SERVICES: readonly [number, "tcp" | "udp", string][] = [
  [80, "tcp", "nginx"],
  [443, "tcp", "nginx"],
  [5432, "tcp", "postgres"],
  [6379, "tcp", "redis-server"],
  [8080, "tcp", "java"],
  [3000, "tcp", "node"],
  [9090, "tcp", "prometheus"],
  [53, "udp", "coredns"],
  [123, "udp", "chronyd"],
  [5353, "udp", "avahi-daemon"],
  [8125, "udp", "statsd"],
  [27017, "tcp", "mongod"],
];
const SHORT_COMMS = ["python3", "node", "go-test", "java", "ruby", "dotnet"];
const HOST_NETNS = 4026531840;

/** Addresses and family for a new port: IPv4, IPv6, loopback or dual-stack. */
function addressing(rng: Rng): { family: 4 | 6; addrs: string[] } {
  const r = rng.next();
  if (r < 0.4) return { family: 4, addrs: ["0.0.0.0"] };
  if (r < 0.55) return { family: 4, addrs: ["127.0.0.1"] };
  if (r < 0.8) return { family: 6, addrs: ["::"] };
  if (r < 0.9) return { family: 6, addrs: ["::1"] };
  return { family: 4, addrs: ["0.0.0.0", "::"] };
}

/** Settings of {@link HostSim}. */
export interface HostSimOptions {
  /** Host name (the `host` of every event). */
  host: string;
  /** Containers on the host (besides the host itself), default 1-4 at random. */
  containers?: number;
  /** Ports kept open on average (default 16). */
  targetOpen?: number;
  /** Seed of this host's randomness. */
  seed: number;
}

/** One simulated host: the truth of its open ports, and the events that change it. */
export class HostSim {
  readonly host: string;
  readonly containers: SimContainer[];
  readonly source: Source;
  #rng: Rng;
  #target: number;
  #open = new Map<string, SimPort>();
  #long: SimPort[] = [];
  #short: SimPort[] = [];

  constructor(options: HostSimOptions) {
    this.host = options.host;
    this.#rng = new Rng(options.seed);
    this.#target = options.targetOpen ?? 16;
    const n = options.containers ?? this.#rng.int(1, 4);
    this.containers = [{ id: null, name: null, netns: HOST_NETNS }];
    for (let i = 0; i < n; i++) {
      this.containers.push({
        id: this.#rng.hex(64),
        name: `${this.#rng.pick(["web", "api", "db", "cache", "worker", "dns", "metrics"])}-${i}`,
        netns: 4026532000 + this.#rng.int(0, 9_999_999),
      });
    }
    this.source = this.#rng.next() < 0.5 ? "ebpf" : "polling";
  }

  /** Ports open now, in the simulated truth. */
  get open(): ReadonlyMap<string, SimPort> {
    return this.#open;
  }

  /**
   * Emit `count` events (opens and closes), applying them to the truth. `now` is the watcher's clock; the
   * changes are spread over the `spanMs` before it (observed during the last report cycle), in order.
   */
  step(count: number, now = Date.now(), spanMs = 0): PortEvent[] {
    const out: PortEvent[] = [];
    for (let i = 0; i < count; i++) {
      const at = new Date(Math.floor(now - spanMs + ((i + 1) * spanMs) / count)).toISOString();
      // A draw can find nothing to do (the port it picked is taken): draw again, so `count` events come out.
      for (let tries = 0; tries < 20; tries++) {
        const size = this.#open.size;
        const pClose = Math.min(0.95, size / (2 * this.#target));
        const e = size > 0 && this.#rng.next() < pClose ? this.#close(at, now) : this.#openOne(at, now);
        if (e) {
          out.push(e);
          break;
        }
      }
    }
    return out;
  }

  #openOne(at: string, now: number): PortEvent | undefined {
    const rng = this.#rng;
    const c = rng.pick(this.containers);
    const long = rng.next() < 0.35;
    let port: number, proto: "tcp" | "udp", comm: string;
    if (long) {
      [port, proto, comm] = rng.pick(SERVICES);
    } else {
      port = rng.int(30000, 60999);
      proto = rng.next() < 0.75 ? "tcp" : "udp";
      comm = rng.pick(SHORT_COMMS);
    }
    const key = truthKey(this.host, c.id, c.netns, proto, port);
    if (this.#open.has(key)) return undefined; // taken: a real bind would fail; nothing to report
    const pid = rng.int(100, 4_000_000);
    const { family, addrs } = addressing(rng);
    const event: PortEvent = {
      id: uuidv7(now),
      event: "open",
      port,
      proto,
      family,
      addrs,
      pids: [pid],
      container_id: c.id,
      container_name: c.name,
      source: this.source,
      observed_at: at,
      host: this.host,
      netns: c.netns,
      process: { pid, comm, cmdline: `${comm} --port ${port}`, uid: c.id ? 0 : 1000 },
    };
    const p: SimPort = { key, long, event };
    this.#open.set(key, p);
    (long ? this.#long : this.#short).push(p);
    return event;
  }

  #close(at: string, now: number): PortEvent | undefined {
    // Short-lived ports close far more often than services (a service closes about 1 time in 20).
    const fromLong = this.#short.length === 0 || (this.#long.length > 0 && this.#rng.next() < 0.05);
    const list = fromLong ? this.#long : this.#short;
    if (list.length === 0) return undefined;
    const i = Math.floor(this.#rng.next() * list.length);
    const p = list[i];
    list[i] = list[list.length - 1];
    list.pop();
    this.#open.delete(p.key);
    const o = p.event;
    return {
      ...o,
      id: uuidv7(now),
      event: "close",
      pids: [],
      last_pids: o.pids,
      observed_at: at,
    };
  }
}
