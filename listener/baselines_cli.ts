/**
 * `deno task baselines`: the learned baselines of a listener (LISTENER_URL): `list` (default) shows each scope,
 * whether it still learns and its ports; `export` prints them as policy YAML (to review and pin as
 * POLICY_PATH); `reset SCOPE...` or `reset --all` forgets scopes so they learn again.
 * @module
 */
import { parseArgs } from "node:util";
import type { ScopeListing } from "../policy/baseline.ts";
import { describeScope } from "../policy/baseline.ts";
import { baseUrl, get, PortsError } from "./ports_cli.ts";

const USAGE = `usage: deno task baselines [list [--json] | export | reset SCOPE... | reset --all]
  list     each scope (an image, a compose service, a host's own processes): its window and learned ports
  export   the finished baselines as policy YAML (review it, then use it as POLICY_PATH)
  reset    forget scopes (keys as list shows them) so they learn again; --all forgets every one
  Asks the listener at LISTENER_URL (default http://127.0.0.1:8080; LISTENER_TOKEN if it needs one).`;

/** The scopes as lines: key, learning until / learned, ports. */
export function formatScopes(scopes: ScopeListing[]): string {
  if (scopes.length === 0) return "no baselines learned yet";
  return scopes.map((s) =>
    `${s.key}  ${describeScope(s)}\n  ${
      s.learning ? `learning until ${s.ends_at}` : `learned ${s.started_at} to ${s.ends_at}`
    }: ${s.ports.join(" ") || "(no ports)"}`
  ).join("\n");
}

/** Run the command; resolves with the exit code. */
export async function runBaselines(args: string[], env = Deno.env): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { json: { type: "boolean" }, all: { type: "boolean" }, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    console.error(`baselines: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command = "list", ...scopes] = positionals;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (!["list", "export", "reset"].includes(command)) {
    console.error(
      `baselines: unknown command ${JSON.stringify(command)}: expected list, export or reset\n${USAGE}`,
    );
    return 2;
  }
  if (command === "reset" && scopes.length === 0 && !values.all) {
    console.error(
      "baselines: reset needs the scopes to forget (keys as `deno task baselines` lists them) or --all",
    );
    return 2;
  }
  try {
    const base = baseUrl(env.get("LISTENER_URL"));
    const token = env.get("LISTENER_TOKEN") || undefined;
    if (command === "export") {
      console.log((await (await get(base, "/baselines/export", token)).text()).trimEnd());
    } else if (command === "reset") {
      const q = values.all ? "all=1" : scopes.map((s) => `scope=${encodeURIComponent(s)}`).join("&");
      const { reset } = await (await get(base, `/baselines?${q}`, token, "DELETE")).json() as {
        reset: string[];
      };
      console.log(
        `reset ${reset.length} scope(s)${reset.length ? `: ${reset.join(", ")}` : ""}; they learn again`,
      );
    } else {
      const body = await (await get(base, "/baselines", token)).json() as {
        scopes: ScopeListing[];
        note?: string;
      };
      console.log(values.json ? JSON.stringify(body.scopes) : body.note ?? formatScopes(body.scopes));
    }
    return 0;
  } catch (e) {
    if (e instanceof PortsError) {
      console.error(`baselines: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

if (import.meta.main) Deno.exit(await runBaselines(Deno.args));
