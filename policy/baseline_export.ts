/**
 * Learned baselines written out as policy rules (YAML): per scope, an allow rule for the ports it learned and
 * an alert rule for anything else in it, so a learned baseline can be reviewed, edited and pinned as
 * POLICY_PATH. Pure.
 *
 * @example
 * ```ts
 * const yaml = baselinesAsPolicy(baselines.list(Date.now()), { severity: "warning" });
 * ```
 * @module
 */
import { stringify } from "yaml";
import type { PolicyFile, PolicyMatch, PolicyRule } from "./format.ts";
import { describeScope, type ScopeListing } from "./baseline.ts";

/** The match of everything in a scope. */
function scopeMatch(s: ScopeListing): PolicyMatch {
  const m: PolicyMatch = {};
  if (s.host !== null) m.host = s.host;
  if (s.kind === "host") m.in_container = false;
  else if (s.kind === "image") m.image = s.value;
  else {
    const [project, ...service] = s.value.split("/");
    m.compose_project = project;
    m.compose_service = service.join("/");
  }
  return m;
}

/** The rules of one scope: allow its learned ports (one rule per proto), alert on the rest. */
function scopeRules(s: ScopeListing, severity: PolicyRule["severity"]): PolicyRule[] {
  const byProto = new Map<string, number[]>();
  for (const p of s.ports) {
    const [proto, port] = p.split("/");
    byProto.set(proto, [...byProto.get(proto) ?? [], Number(port)]);
  }
  const what = describeScope(s);
  const rules: PolicyRule[] = [...byProto].map(([proto, ports]) => ({
    name: `baseline: ${what}${byProto.size > 1 ? ` (${proto})` : ""}`,
    description: `learned ${s.started_at} to ${s.ends_at}`,
    match: {
      ...scopeMatch(s),
      ...(proto === "tcp" || proto === "udp" ? { proto } : {}),
      port: ports.join(","),
    },
    action: "allow",
  }));
  rules.push({
    name: `baseline: ${what}: anything else`,
    description: `not open in ${what} while it learned`,
    match: scopeMatch(s),
    action: "alert",
    severity,
  });
  return rules;
}

/**
 * A policy file (YAML text) of the scopes' baselines; `learning` scopes are left out (their baseline is not
 * complete), and listed in a comment.
 */
export function baselinesAsPolicy(
  scopes: readonly ScopeListing[],
  options: { severity?: PolicyRule["severity"]; at?: string } = {},
): string {
  const done = scopes.filter((s) => !s.learning);
  const open = scopes.filter((s) => s.learning);
  const file: Pick<PolicyFile, "rules" | "default"> = {
    rules: done.flatMap((s) => scopeRules(s, options.severity ?? "warning")),
    default: "allow",
  };
  const head = [
    `# Learned baselines exported by portwatch${
      options.at ? ` at ${options.at}` : ""
    }: ${done.length} scope(s).`,
    "# Review, then use as POLICY_PATH (or paste the rules above your own default).",
    ...open.map((s) => `# still learning, left out: ${describeScope(s)} (until ${s.ends_at})`),
  ];
  return `${head.join("\n")}\n${stringify(file, { lineWidth: 0 })}`;
}
