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
  in_container: z.boolean().optional().describe("true: held in a container; false: by a process of the host"),
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

/** A duration: 90s, 15m, 24h, 7d, 2w (or a number of ms). */
export const Duration = z.union([
  z.number().int().positive(),
  z.string().regex(/^\s*\d+\s*(ms|s|m|h|d|w)\s*$/, "a duration such as 90s, 15m, 24h, 7d or 2w"),
]);

/** A duration in ms. */
export function durationMs(d: number | string): number {
  if (typeof d === "number") return d;
  const [, n, unit] = d.trim().match(/^(\d+)\s*(ms|s|m|h|d|w)$/)!;
  const ms = { ms: 1, s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 7 * 86400e3 }[unit as "ms"];
  return Number(n) * ms;
}

/**
 * Learned baselines: ports that no rule decides are learned per scope (an image, or a compose service) during a
 * window that starts at the scope's first port; after it, a port the scope never had raises an alert.
 */
export const LearnSchema = z.strictObject({
  scope: z.enum(["image", "service"]).default("image").describe(
    "image: per container image; service: per compose project and service (else per image)",
  ),
  per: z.enum(["host", "fleet"]).default("host").describe("host: a baseline per host; fleet: one for all"),
  window: Duration.default("24h"),
  severity: Severity.default("warning"),
  description: z.string().optional(),
  match: MatchSchema.optional().describe("only ports that match are learned (default: all)"),
});

/** The whole file. */
export const PolicySchema = z.strictObject({
  rules: z.array(RuleSchema).default([]),
  learn: LearnSchema.optional(),
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
/** The learning section as written. */
export type LearnSettings = z.infer<typeof LearnSchema>;

/** A rule's ports as parts "9229" or "8000-8100". */
export function portParts(port: number | string | (number | string)[]): string[] {
  return [port].flat().flatMap((p) => String(p).split(",")).map((p) => p.replace(/\s+/g, ""));
}
