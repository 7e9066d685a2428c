/**
 * The policy file's format (POLICY_PATH, YAML), as a zod schema: an ordered list of rules, the first that
 * matches an open port decides (allow, or alert with a severity), and a default for ports no rule matches.
 *
 * @example
 * ```yaml
 * rules:
 *   - name: no-node-debugger
 *     match: { port: "9229", addresses: any }
 *     action: alert
 *     severity: critical
 * default: allow
 * ```
 * @module
 */
import { z } from "zod";

/** One string or a list of them (each a glob: `*` for any run of characters). */
const globs = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);

/** Ports: 9229, "9229", "8000-8100", "80,443" (and lists of those). */
const ports = z.union([
  z.number().int().min(1).max(65535),
  z.string().regex(
    /^\s*\d{1,5}(\s*-\s*\d{1,5})?(\s*,\s*\d{1,5}(\s*-\s*\d{1,5})?)*\s*$/,
    'ports as "9229", "8000-8100" or "80,443"',
  ),
  z.array(z.union([z.number().int().min(1).max(65535), z.string()])).min(1),
]);

/**
 * Addresses: `any` (bound to a wildcard address, 0.0.0.0 or ::), `loopback` (every address it is bound to is a
 * loopback one), or a given address (it is bound to that one); or a list (any of them).
 */
const addresses = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);

/** What a rule matches; every field given must match (a list: any of its values). */
export const MatchSchema = z.strictObject({
  host: globs.optional(),
  container: globs.optional().describe("container name"),
  container_id: globs.optional().describe("container id, or its prefix with *"),
  image: globs.optional(),
  compose_project: globs.optional(),
  compose_service: globs.optional(),
  proto: z.enum(["tcp", "udp"]).optional(),
  port: ports.optional(),
  addresses: addresses.optional(),
  comm: globs.optional().describe("the holding process's name"),
  exe: globs.optional().describe("the holding process's program (its command line's first word)"),
  uid: z.union([z.number().int().min(0), z.array(z.number().int().min(0)).min(1)]).optional(),
});

/** How bad an alert is. */
export const Severity = z.enum(["info", "warning", "critical"]);

/** One rule. */
export const RuleSchema = z.strictObject({
  name: z.string().min(1),
  description: z.string().optional(),
  match: MatchSchema.default({}),
  action: z.enum(["allow", "alert"]),
  severity: Severity.optional().describe("for alert: default warning"),
});

/** The whole file. */
export const PolicySchema = z.strictObject({
  rules: z.array(RuleSchema).default([]),
  default: z.union([
    z.enum(["allow", "alert"]),
    z.strictObject({ action: z.enum(["allow", "alert"]), severity: Severity.optional() }),
  ]).default("allow"),
});

/** A policy as written. */
export type PolicyFile = z.infer<typeof PolicySchema>;
/** A rule as written. */
export type PolicyRule = z.infer<typeof RuleSchema>;
/** A rule's match as written. */
export type PolicyMatch = z.infer<typeof MatchSchema>;

/** A rule's ports as parts "9229" or "8000-8100". */
export function portParts(port: number | string | (number | string)[]): string[] {
  return [port].flat().flatMap((p) => String(p).split(",")).map((p) => p.replace(/\s+/g, ""));
}
