/**
 * Tracepoints need tracefs (or debugfs): mounted here when missing. `ip netns exec` and some containers hide it;
 * both eBPF engines (bpftrace, libbpf) call this before attaching.
 * @module
 */
import { tryCommand } from "../infra/try_command.ts";

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Make sure tracefs (and debugfs) are mounted; returns a problem or undefined. */
export async function ensureTracefs(): Promise<string | undefined> {
  if (exists("/sys/kernel/tracing/events/syscalls") || exists("/sys/kernel/debug/tracing/events/syscalls")) {
    return undefined;
  }
  const tries: [string, string][] = [["tracefs", "/sys/kernel/tracing"], ["debugfs", "/sys/kernel/debug"]];
  const errors: string[] = [];
  for (const [type, dir] of tries) {
    const out = await tryCommand("mount", ["-t", type, "nodev", dir]);
    if (!out.success) errors.push(`mount -t ${type} ${dir}: ${out.stderr}`);
  }
  return exists("/sys/kernel/tracing/events/syscalls") || exists("/sys/kernel/debug/tracing/events/syscalls")
    ? undefined
    : `tracepoints are not reachable (${errors.join("; ")})`;
}
