/**
 * `deno task policy check FILE...`: validate policy files offline, as the listener would read them. Prints
 * each file's rules, or its first problem as `file:line:column: reason`; exits 1 when any file is bad.
 * @module
 */
import { loadPolicy, PolicyError } from "./load.ts";

/** Check `files`; returns the exit code. */
export async function checkPolicies(
  files: string[],
  out = console.log,
  err = console.error,
): Promise<number> {
  let bad = 0;
  for (const file of files) {
    try {
      const policy = await loadPolicy(file);
      const d = policy.source.default;
      const learn = policy.source.learn;
      const learning = learn ? `, learning per ${learn.scope} and ${learn.per} for ${learn.window}` : "";
      out(`${file}: ok, ${policy.size} rule(s)${learning}, default ${typeof d === "string" ? d : d.action}`);
    } catch (e) {
      if (!(e instanceof PolicyError)) throw e;
      err(e.message);
      bad++;
    }
  }
  return bad > 0 ? 1 : 0;
}

/** The command line: `check FILE...`. */
export async function policyMain(args: string[]): Promise<number> {
  const [command, ...files] = args;
  if (command !== "check" || files.length === 0) {
    console.error(
      "usage: deno task policy check FILE...  (validate policy files: file:line:column on errors)",
    );
    return 2;
  }
  return await checkPolicies(files);
}

if (import.meta.main) Deno.exit(await policyMain(Deno.args));
