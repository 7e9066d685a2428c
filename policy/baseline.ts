/**
 * Learned baselines: the ports each scope (a container image, or a compose service; per host or fleet-wide)
 * had open during its learning window. A scope's window starts at the first port seen in it and lasts the
 * policy's `learn.window`; ports seen in it become expected, and after it a port the scope never had is
 * unexpected. Pure: the caller gives the time and persists what {@link Baselines.judge} learned.
 *
 * @example
 * ```ts
 * const policy = parsePolicy("learn: { scope: image, window: 24h }\n");
 * const baselines = new Baselines();
 * const { verdict, learned } = baselines.judge(policy, event, Date.now());
 * // verdict: { verdict: "allow", rule: "baseline", description: "learning ... until ..." }; persist `learned`
 * ```
 * @module
 */
import type { PortEvent } from "../events/schema.ts";
import { durationMs } from "./format.ts";
import type { Policy, Verdict } from "./match.ts";

/** One scope's learning window. */
export interface BaselineScope {
  /** `image:<image>@<host>`, `service:<project>/<service>@<host>` or `host@<host>`; `*` for fleet-wide. */
  key: string;
  /** What the scope is: a container image, a compose service, or the processes of a host itself. */
  kind: "image" | "service" | "host";
  /** The image, `project/service`, or "" for a host's own processes. */
  value: string;
  /** The host, or null for a fleet-wide baseline. */
  host: string | null;
  started_at: string;
  ends_at: string;
}

/** A port a scope had open while it learned. */
export interface BaselinePort {
  scope: string;
  proto: string;
  port: number;
  first_seen: string;
}

/** Baselines as stored: scopes and their ports. */
export interface BaselineData {
  scopes: BaselineScope[];
  ports: BaselinePort[];
}

/** A scope with its ports, as listed by `GET /baselines`. */
export interface ScopeListing extends BaselineScope {
  /** True while the window is open. */
  learning: boolean;
  /** `tcp/80`, sorted. */
  ports: string[];
}

/** What a verdict learned: new scopes and ports to persist (empty lists when nothing was new). */
export interface Judged {
  verdict: Verdict;
  learned?: BaselineData;
}

interface Learned {
  scope: BaselineScope;
  ends: number;
  ports: Map<string, BaselinePort>;
}

/** The rule name of verdicts a baseline decided. */
export const BASELINE_RULE = "baseline";

const portId = (proto: string | null | undefined, port: number) => `${proto ?? ""}/${port}`;

/** Baselines in memory: every scope's window and ports. */
export class Baselines {
  readonly #scopes = new Map<string, Learned>();

  constructor(data?: BaselineData) {
    if (data) this.merge(data);
  }

  /** Add stored scopes and ports (a scope already known keeps the earlier window: the first writer wins). */
  merge(data: BaselineData): void {
    for (const s of data.scopes) {
      const had = this.#scopes.get(s.key);
      if (had && had.scope.started_at <= s.started_at) continue;
      this.#scopes.set(s.key, { scope: s, ends: Date.parse(s.ends_at), ports: had?.ports ?? new Map() });
    }
    for (const p of data.ports) {
      const s = this.#scopes.get(p.scope);
      if (s && !s.ports.has(portId(p.proto, p.port))) s.ports.set(portId(p.proto, p.port), p);
    }
  }

  /** Forget everything and hold `data`. */
  replace(data: BaselineData): void {
    this.#scopes.clear();
    this.merge(data);
  }

  /** The scope `e` belongs to under `policy`'s learning (undefined: not learned, e.g. a container without image). */
  scopeOf(policy: Policy, e: PortEvent): Omit<BaselineScope, "started_at" | "ends_at"> | undefined {
    const learn = policy.source.learn;
    if (!learn || !policy.learns(e)) return undefined;
    const host = learn.per === "host" ? e.host ?? "" : null;
    const at = `@${host ?? "*"}`;
    if (!e.container_id) return { key: `host${at}`, kind: "host", value: "", host };
    if (learn.scope === "service" && e.compose_project && e.compose_service) {
      const value = `${e.compose_project}/${e.compose_service}`;
      return { key: `service:${value}${at}`, kind: "service", value, host };
    }
    if (!e.image) return undefined;
    return { key: `image:${e.image}${at}`, kind: "image", value: e.image, host };
  }

  /**
   * The verdict of a port no rule decided, learning from it: a scope seen first starts its window; a port seen
   * within the window joins the baseline. After the window, a port outside the baseline is an alert. Ports the
   * policy does not learn get its default.
   */
  judge(policy: Policy, e: PortEvent, now: number): Judged {
    return this.#judge(policy, e, now, true);
  }

  /** {@link judge} without learning: the verdict an open port has now. */
  peek(policy: Policy, e: PortEvent, now: number): Verdict {
    return this.#judge(policy, e, now, false).verdict;
  }

  #judge(policy: Policy, e: PortEvent, now: number, learn: boolean): Judged {
    const settings = policy.source.learn;
    const where = this.scopeOf(policy, e);
    if (!settings || !where) return { verdict: policy.defaultVerdict };
    const id = portId(e.proto, e.port);
    let s = this.#scopes.get(where.key);
    const learned: BaselineData = { scopes: [], ports: [] };
    if (!s) {
      const window = durationMs(settings.window);
      const scope = { ...where, started_at: iso(now), ends_at: iso(now + window) };
      if (!learn) return { verdict: learning(scope) };
      s = { scope, ends: now + window, ports: new Map() };
      this.#scopes.set(where.key, s);
      learned.scopes.push(scope);
    }
    if (now < s.ends) {
      if (learn && !s.ports.has(id)) {
        const p = { scope: where.key, proto: e.proto ?? "", port: e.port, first_seen: iso(now) };
        s.ports.set(id, p);
        learned.ports.push(p);
      }
      return { verdict: learning(s.scope), learned: learn ? learned : undefined };
    }
    if (s.ports.has(id)) return { verdict: { verdict: "allow", rule: BASELINE_RULE } };
    return {
      verdict: {
        verdict: "alert",
        rule: BASELINE_RULE,
        severity: settings.severity,
        description: settings.description ??
          `${id} was not open in ${
            describeScope(s.scope)
          } while it learned (${s.scope.started_at} to ${s.scope.ends_at})`,
      },
    };
  }

  /** Every scope with its ports, sorted by key. */
  list(now: number): ScopeListing[] {
    return [...this.#scopes.values()].sort((a, b) => a.scope.key.localeCompare(b.scope.key)).map((s) => ({
      ...s.scope,
      learning: now < s.ends,
      ports: [...s.ports.keys()].sort(byProtoPort),
    }));
  }

  /** The scopes and ports, as stored. */
  data(): BaselineData {
    const scopes = [...this.#scopes.values()];
    return { scopes: scopes.map((s) => s.scope), ports: scopes.flatMap((s) => [...s.ports.values()]) };
  }

  /** Forget the scopes whose key is in `keys` (all when undefined); their learning starts again. */
  reset(keys?: readonly string[]): string[] {
    const gone = keys ? keys.filter((k) => this.#scopes.has(k)) : [...this.#scopes.keys()];
    for (const k of gone) this.#scopes.delete(k);
    return gone;
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function learning(scope: BaselineScope): Verdict {
  return {
    verdict: "allow",
    rule: BASELINE_RULE,
    description: `learning ${describeScope(scope)} until ${scope.ends_at}`,
  };
}

/** "image nginx:1.25 on host web-1", "compose service shop/web (fleet)", "the host's own processes on web-1". */
export function describeScope(s: Pick<BaselineScope, "kind" | "value" | "host">): string {
  const where = s.host === null ? "across the fleet" : `on host ${s.host || "(unnamed)"}`;
  if (s.kind === "host") return `the host's own processes ${where}`;
  return `${s.kind === "image" ? "image" : "compose service"} ${s.value} ${where}`;
}

function byProtoPort(a: string, b: string): number {
  const [pa, na] = a.split("/");
  const [pb, nb] = b.split("/");
  return pa.localeCompare(pb) || Number(na) - Number(nb);
}
