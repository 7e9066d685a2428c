/**
 * Port policy: which open ports are expected (allow) and which raise an alert, from a YAML file (POLICY_PATH).
 * The format (format.ts), reading it with positions (load.ts), matching events (match.ts), and the offline
 * check (`deno task policy check FILE`).
 *
 * @example
 * ```ts
 * import { parsePolicy } from "./mod.ts";
 * const policy = parsePolicy("rules:\n  - { name: dbg, match: { port: 9229, addresses: any }, action: alert }\n");
 * ```
 * @module
 */
export { type PolicyFile, type PolicyRule, PolicySchema } from "./format.ts";
export { loadPolicy, parsePolicy, PolicyError } from "./load.ts";
export { Policy, type Verdict } from "./match.ts";
export { checkPolicies } from "./check.ts";
export { PolicyHolder, type PolicyHolderEvents } from "./holder.ts";
