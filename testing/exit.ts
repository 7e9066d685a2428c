/**
 * Test helpers for programs that must stop by themselves (a bad setting, a port in use): run one to its exit
 * with a deadline, and find any process it left behind. Every process started is marked with an environment
 * variable of its own (children inherit it), so what is left is found in /proc whoever started it.
 * @module
 */

import { waitUntil } from "../infra/wait.ts";

/** The environment variable that marks the processes of one {@link runToExit}. */
export const MARK_VARIABLE = "PORTWATCH_TEST_MARK";

/** How a program run by {@link runToExit} ended. */
export interface Exited {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
  /** The mark its processes carry in their environment: {@link markedPids} finds any left. */
  mark: string;
}

/**
 * Run `cmd` with `env` added to ours (and a fresh {@link MARK_VARIABLE}) until it exits; SIGKILL and throw
 * after `timeoutMs`. Output is piped and decoded.
 */
export async function runToExit(
  cmd: string[],
  { env = {}, timeoutMs = 30_000, cwd }: { env?: Record<string, string>; timeoutMs?: number; cwd?: string } =
    {},
): Promise<Exited> {
  const mark = crypto.randomUUID();
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    env: { ...env, [MARK_VARIABLE]: mark },
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      reject(new Error(`${cmd.join(" ")} did not exit within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  try {
    const out = await Promise.race([child.output(), deadline]);
    const text = new TextDecoder();
    return {
      code: out.code,
      signal: out.signal,
      stdout: text.decode(out.stdout),
      stderr: text.decode(out.stderr),
      mark,
    };
  } finally {
    clearTimeout(timer);
    await child.status;
  }
}

/** The pids of live processes whose environment carries `mark` (from /proc; ours or, as root, anyone's). */
export function markedPids(mark: string): number[] {
  const needle = `${MARK_VARIABLE}=${mark}`;
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    let environ: string;
    try {
      environ = new TextDecoder().decode(Deno.readFileSync(`/proc/${entry.name}/environ`));
    } catch {
      continue; // gone meanwhile, or not ours to read
    }
    if (environ.split("\0").includes(needle)) pids.push(Number(entry.name));
  }
  return pids;
}

/**
 * Resolve once no process carries `mark` (polled, `ms` deadline); else SIGKILL them and throw naming their
 * pids and command lines.
 */
export async function assertNoneLeft(mark: string, ms = 5_000): Promise<void> {
  try {
    await waitUntil("every process of the run to be gone", () => markedPids(mark).length === 0, ms, 50);
  } catch {
    const left = markedPids(mark);
    const described = left.map((pid) => {
      let cmdline = "?";
      try {
        cmdline = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").join(" ").trim();
      } catch { /* gone */ }
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone */ }
      return `${pid} (${cmdline})`;
    });
    if (described.length > 0) throw new Error(`processes left running: ${described.join(", ")}`);
  }
}
