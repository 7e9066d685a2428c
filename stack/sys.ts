import { waitUntil } from "../infra/wait.ts";

export { waitUntil };
/** Small system helpers for the stack: run a command, check it, start detached processes. */

/** Run a command; throws with its stderr when it fails (unless `check` is false). */
export async function sh(cmd: string[], { check = true, input }: { check?: boolean; input?: string } = {}) {
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdin: input === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (input !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(input));
    await w.close();
  }
  const out = await child.output();
  const res = {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
  if (check && out.code !== 0) throw new Error(`${cmd.join(" ")} failed (${out.code}): ${res.stderr.trim()}`);
  return res;
}

/** True when a command runs and exits 0. */
export async function works(cmd: string[]): Promise<boolean> {
  try {
    return (await sh(cmd, { check: false })).code === 0;
  } catch {
    return false;
  }
}

/**
 * Start `cmd` detached (its own session, so it outlives this process), output appended to `log`, `env` added to
 * ours. Resolves with its pid (the program's own: the shell that starts it execs into it).
 */
export async function spawnDetached(
  cmd: string[],
  log: string,
  env: Record<string, string> = {},
): Promise<number> {
  const quoted = cmd.map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(" ");
  const pidFile = `${log}.pid`;
  try {
    Deno.removeSync(pidFile);
  } catch { /* none */ }
  await new Deno.Command("setsid", {
    args: ["-f", "sh", "-c", `echo $$ > '${pidFile}'; exec ${quoted} >> '${log}' 2>&1 < /dev/null`],
    env,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).output();
  let pid = 0;
  await waitUntil(`${cmd[0]} to start`, () => {
    try {
      pid = Number(Deno.readTextFileSync(pidFile).trim());
      return pid > 0;
    } catch {
      return false;
    }
  }, 10_000);
  return pid;
}

/** True while `pid` is alive (and not a zombie). */
export function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/\) Z /.test(stat);
  } catch {
    return false;
  }
}

/** Signal a pid, ignoring one that is gone. */
export function signal(pid: number, sig: Deno.Signal): void {
  try {
    Deno.kill(pid, sig);
  } catch { /* gone */ }
}
