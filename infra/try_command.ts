/**
 * Running a helper command whose failure is an answer, not an error: `mount`, `bpftrace --version`. A command
 * that cannot be spawned (not installed) is a failure with the reason, not a throw.
 * @module
 */

/** What a command said: whether it succeeded, and its stderr (trimmed), or why it could not run. */
export interface TryResult {
  success: boolean;
  stderr: string;
}

/**
 * Run `cmd` with `args`, stdout dropped.
 * @example
 * ```ts
 * const out = await tryCommand("mount", ["-t", "tracefs", "nodev", "/sys/kernel/tracing"]);
 * if (!out.success) console.error(out.stderr);
 * ```
 */
export async function tryCommand(cmd: string, args: string[]): Promise<TryResult> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
    return { success: out.success, stderr: new TextDecoder().decode(out.stderr).trim() };
  } catch (e) {
    return { success: false, stderr: (e as Error).message };
  }
}
