/**
 * Reading a policy file: YAML with positions, the format's schema (format.ts), and the checks a schema cannot
 * make (port ranges, addresses). A bad file is one {@link PolicyError} naming `file:line:column` and the
 * reason, the first problem in the file; the caller keeps its last good policy.
 * @module
 */
import { isIP } from "node:net";
import { LineCounter, parseDocument } from "yaml";
import type { z } from "zod";
import { type PolicyFile, type PolicyMatch, PolicySchema, portParts } from "./format.ts";
import { compilePolicy, type Policy } from "./match.ts";

/** A policy file that cannot be used: where and why. */
export class PolicyError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly column: number,
    readonly reason: string,
  ) {
    super(`${file}:${line}:${column}: ${reason}`);
    this.name = "PolicyError";
  }
}

type Path = (string | number)[];

/** The policy in `text` (the contents of `file`, named in errors); throws {@link PolicyError}. */
export function parsePolicy(text: string, file = "policy"): Policy {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number) => lines.linePos(offset);
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const pos = at(e.pos[0]);
    throw new PolicyError(file, pos.line, pos.col, e.message.split("\n")[0]);
  }
  /** Where `path` is in the file (or its nearest written parent). */
  const where = (path: Path): { line: number; col: number } => {
    for (let p = [...path];; p = p.slice(0, -1)) {
      const node = p.length === 0 ? doc.contents : doc.getIn(p, true);
      const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
      if (range) return at(range[0]);
      if (p.length === 0) return { line: 1, col: 1 };
    }
  };
  const raw = doc.toJS() ?? {};
  const parsed = PolicySchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const pos = where(issue.path as Path);
    throw new PolicyError(file, pos.line, pos.col, describe(issue));
  }
  const problem = checkValues(parsed.data);
  if (problem) {
    const pos = where(problem.path);
    throw new PolicyError(file, pos.line, pos.col, problem.reason);
  }
  return compilePolicy(parsed.data);
}

/** Read and parse `path`; throws {@link PolicyError} (also for a file that cannot be read). */
export async function loadPolicy(path: string): Promise<Policy> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new PolicyError(path, 1, 1, `cannot read the file: ${(e as Error).message}`);
  }
  return parsePolicy(text, path);
}

/** A zod issue as a sentence naming the field. */
function describe(issue: z.core.$ZodIssue): string {
  const field = issue.path.length ? issue.path.join(".") : "the file";
  if (issue.code === "unrecognized_keys") {
    return `${field}: unknown key(s) ${issue.keys.map((k) => JSON.stringify(k)).join(", ")}`;
  }
  if (issue.code === "invalid_value") {
    return `${field}: expected one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
  }
  if (issue.code === "invalid_union") {
    return `${field}: ${issue.message}; see the policy format in the README`;
  }
  return `${field}: ${issue.message}`;
}

/** Checks of one match beyond the schema: port ranges low-high within 1-65535, addresses any, loopback or an IP. */
function checkMatch(m: PolicyMatch, at: Path): { path: Path; reason: string } | undefined {
  const where = at.join(".");
  if (m.port !== undefined) {
    for (const part of portParts(m.port)) {
      const r = /^(\d+)(?:-(\d+))?$/.exec(part);
      const lo = r ? Number(r[1]) : NaN, hi = r ? Number(r[2] ?? r[1]) : NaN;
      if (!r || lo < 1 || hi > 65535 || lo > hi) {
        return {
          path: [...at, "port"],
          reason: `${where}.port: "${part}" is not a port 1-65535 or a range low-high of them`,
        };
      }
    }
  }
  for (const a of m.addresses === undefined ? [] : [m.addresses].flat()) {
    if (a !== "any" && a !== "loopback" && isIP(a) === 0) {
      return {
        path: [...at, "addresses"],
        reason: `${where}.addresses: "${a}" is not any, loopback or an IP address`,
      };
    }
  }
  return undefined;
}

/** Checks beyond the schema: every match's values (see {@link checkMatch}); severities only on alert rules. */
function checkValues(policy: PolicyFile): { path: Path; reason: string } | undefined {
  for (const [i, rule] of policy.rules.entries()) {
    const bad = checkMatch(rule.match, ["rules", i, "match"]);
    if (bad) return bad;
    if (rule.action === "allow" && rule.severity !== undefined) {
      return {
        path: ["rules", i, "severity"],
        reason: `rules.${i}.severity: a severity belongs to an alert rule, not an allow rule`,
      };
    }
  }
  if (policy.learn?.match) return checkMatch(policy.learn.match, ["learn", "match"]);
  return undefined;
}
