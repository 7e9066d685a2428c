/**
 * A policy compiled for matching: each rule's fields become small predicates, tried in order; the first rule
 * whose every field matches an event decides its verdict, else the default. Pure.
 *
 * @example
 * ```ts
 * const policy = parsePolicy(text, "policy.yaml");
 * policy.verdictOf(event); // { verdict: "alert", rule: "no-node-debugger", severity: "critical" }
 * ```
 * @module
 */
import type { PortEvent } from "../events/schema.ts";
import { type PolicyFile, type PolicyMatch, portParts } from "./format.ts";

/** What the policy says of one open port. */
export interface Verdict {
  verdict: "allow" | "alert";
  /** The rule that decided, or null for the default. */
  rule: string | null;
  /** For an alert: info, warning or critical. */
  severity?: "info" | "warning" | "critical";
  /** The rule's description, when it has one. */
  description?: string;
}

type Predicate = (e: PortEvent) => boolean;

/** A glob (`*` for any run) as an anchored RegExp. */
function globRe(glob: string): RegExp {
  return new RegExp(`^${glob.split("*").map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`);
}

/** A predicate over one string field: any of the globs matches (a missing value never does). */
function globs(value: string | string[], get: (e: PortEvent) => string | null | undefined): Predicate {
  const res = [value].flat().map(globRe);
  return (e) => {
    const v = get(e);
    return v !== null && v !== undefined && res.some((re) => re.test(v));
  };
}

const LOOPBACK = /^(127\.|::1$|::ffff:127\.)/;
const WILDCARD = new Set(["0.0.0.0", "::"]);

/** The predicates of one match. */
function predicatesOf(m: PolicyMatch): Predicate[] {
  const out: Predicate[] = [];
  if (m.host !== undefined) out.push(globs(m.host, (e) => e.host));
  if (m.container !== undefined) out.push(globs(m.container, (e) => e.container_name));
  if (m.container_id !== undefined) out.push(globs(m.container_id, (e) => e.container_id));
  if (m.image !== undefined) out.push(globs(m.image, (e) => e.image));
  if (m.compose_project !== undefined) out.push(globs(m.compose_project, (e) => e.compose_project));
  if (m.compose_service !== undefined) out.push(globs(m.compose_service, (e) => e.compose_service));
  if (m.comm !== undefined) out.push(globs(m.comm, (e) => e.process?.comm));
  if (m.exe !== undefined) out.push(globs(m.exe, (e) => e.process?.cmdline.split(" ")[0]));
  if (m.proto !== undefined) {
    const proto = m.proto;
    out.push((e) => e.proto === proto);
  }
  if (m.uid !== undefined) {
    const uids = new Set([m.uid].flat());
    out.push((e) => e.process !== undefined && uids.has(e.process.uid));
  }
  if (m.port !== undefined) {
    const ranges = portParts(m.port).map((p) => p.split("-").map(Number));
    out.push((e) => ranges.some(([lo, hi = lo]) => e.port >= lo && e.port <= hi));
  }
  if (m.addresses !== undefined) {
    const wanted = [m.addresses].flat();
    out.push((e) =>
      wanted.some((w) =>
        w === "any"
          ? e.addrs.some((a) => WILDCARD.has(a))
          : w === "loopback"
          ? e.addrs.length > 0 && e.addrs.every((a) => LOOPBACK.test(a))
          : e.addrs.includes(w)
      )
    );
  }
  return out;
}

/** A compiled policy. */
export class Policy {
  readonly #rules: { verdict: Verdict; predicates: Predicate[] }[];
  readonly #default: Verdict;

  constructor(readonly source: PolicyFile) {
    this.#rules = source.rules.map((r) => ({
      predicates: predicatesOf(r.match),
      verdict: {
        verdict: r.action,
        rule: r.name,
        ...(r.action === "alert" ? { severity: r.severity ?? "warning" } : {}),
        ...(r.description ? { description: r.description } : {}),
      },
    }));
    const d = typeof source.default === "string" ? { action: source.default } : source.default;
    this.#default = {
      verdict: d.action,
      rule: null,
      ...(d.action === "alert" ? { severity: ("severity" in d && d.severity) || "warning" } : {}),
    };
  }

  /** How many rules it has. */
  get size(): number {
    return this.#rules.length;
  }

  /** The verdict for an event's port (an open or a change: what holds it now, where it is bound). */
  verdictOf(e: PortEvent): Verdict {
    for (const r of this.#rules) {
      if (r.predicates.every((p) => p(e))) return r.verdict;
    }
    return this.#default;
  }
}

/** Compile a validated policy file. */
export function compilePolicy(file: PolicyFile): Policy {
  return new Policy(file);
}
