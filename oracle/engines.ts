/**
 * Oracle: the engines checked, how each is started (program and environment), when each must skip, and how
 * long each may take to agree with `ss` after a change.
 * @module
 */
import { netnsSkipReason } from "../testing/netns.ts";
import { libbpfUnavailableReason } from "../ebpf/libbpf/libbpf_source.ts";

/**
 * SCAN_INTERVAL of the polling engines, ms: short, so that a run stays well under a minute, but long enough
 * that the scans (netlink or /proc/net, plus the /proc fd walk for pids) take a small part of it.
 */
export const POLL_INTERVAL_MS = 250;

/** What an eBPF engine must take at most from a change in the kernel to its event leaving the watcher. */
export const EBPF_LATENCY_MS = 250;

/**
 * Added to every deadline for what comes after the engine: the POST to the listener, the listener applying it
 * to its open-port table, and the test's own polling of `GET /ports` (every 20 ms) on a loaded 2-CPU machine.
 */
export const DELIVERY_SLACK_MS = 250;

/** One engine case. */
export interface EngineCase {
  /** Test name part: "polling (netlink)". */
  name: string;
  /** Entry point, relative to the repository: watcher/main.ts or ebpf/main.ts. */
  program: "watcher/main.ts" | "ebpf/main.ts";
  /** Engine-specific environment (over the common one: LISTENER_URL, HOST_NAME, paths, CLOSE_GRACE_MS=0). */
  env: Record<string, string>;
  /** The start-up log line that says this engine (and no fallback) runs. */
  ready: RegExp;
  /**
   * Deadline for the listener to agree with ss after a step, ms: one scan interval for polling (a change is
   * seen by the next scan), EBPF_LATENCY_MS for the event engines; plus DELIVERY_SLACK_MS.
   */
  deadlineMs: number;
  /** Why it cannot run here (printed, and the case skipped), or undefined. */
  skip: () => string | undefined;
}

/**
 * Settings shared by every engine: delivery to the listener, a host name of its own (the /ports filter), state
 * in the test's directory, and CLOSE_GRACE_MS=0 (a close is reported at once, not held back).
 */
export function commonEnv(listenerUrl: string, hostName: string, dir: string): Record<string, string> {
  return {
    LISTENER_URL: listenerUrl,
    LISTENER_TOKEN: "",
    HOST_NAME: hostName,
    CLOSE_GRACE_MS: "0",
    SNAPSHOT_PATH: `${dir}/snapshot`,
    SPOOL_PATH: `${dir}/spool`,
    DELIVERY_TIMEOUT: "2",
    LOG_LEVEL: "info",
  };
}

/** The first `name` on `path` (":"-separated) that is an executable file, or undefined. */
export function findOnPath(name: string, path: string | undefined, isExecutable: (p: string) => boolean) {
  for (const dir of (path ?? "").split(":")) {
    if (dir !== "" && isExecutable(`${dir}/${name}`)) return `${dir}/${name}`;
  }
  return undefined;
}

function isExecutable(p: string): boolean {
  try {
    const st = Deno.statSync(p);
    return st.isFile && ((st.mode ?? 0) & 0o111) !== 0;
  } catch {
    return false;
  }
}

function runs(cmd: string, args: string[]): boolean {
  try {
    return new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).outputSync().success;
  } catch {
    return false;
  }
}

/** Why the bpftrace case cannot run: not root, no namespaces, no python3, no bpftrace. */
export function bpftraceSkipReason(): string | undefined {
  const r = netnsSkipReason();
  if (r) return r;
  if (!findOnPath("bpftrace", Deno.env.get("PATH"), isExecutable)) {
    return "bpftrace is not installed (Debian: apt-get install bpftrace)";
  }
  return runs("bpftrace", ["--version"]) ? undefined : "bpftrace does not run";
}

/**
 * Why the libbpf case cannot run: not root, no namespaces, no python3, or what keeps the native engine from
 * loading here (libbpf1, BTF, the kernel, the compiled programs).
 */
export function libbpfSkipReason(): string | undefined {
  return netnsSkipReason() ?? libbpfUnavailableReason();
}

/** Why the Tracee case cannot run: the bpftrace reasons' first part, and no `tracee` binary on PATH. */
export function traceeSkipReason(): string | undefined {
  const r = netnsSkipReason();
  if (r) return r;
  return findOnPath("tracee", Deno.env.get("PATH"), isExecutable)
    ? undefined
    : "no `tracee` binary on PATH (https://github.com/aquasecurity/tracee)";
}

/** Why `ss` cannot be the oracle here. */
export function ssSkipReason(): string | undefined {
  return runs("ss", ["-V"]) ? undefined : "iproute2's `ss` is not installed";
}

/** Reconciliation scans every 10 minutes: in a run of under a minute the eBPF engines stand on their events. */
const NO_RECONCILE = "600";

/** An event engine's case: `deno task ebpf` with EBPF_ENGINE=`engine` alone (no fallback, no reconciling). */
function eventEngine(engine: string, ready: RegExp, skip: () => string | undefined): EngineCase {
  return {
    name: engine,
    program: "ebpf/main.ts",
    env: { EBPF_ENGINE: engine, EBPF_ONLY: "1", EBPF_FALLBACK: "0", EBPF_RECONCILE: NO_RECONCILE },
    ready,
    deadlineMs: EBPF_LATENCY_MS + DELIVERY_SLACK_MS,
    skip: () => skip() ?? ssSkipReason(),
  };
}

/** Every engine the oracle checks. */
export const ENGINES: readonly EngineCase[] = [
  {
    name: "polling (netlink)",
    program: "watcher/main.ts",
    env: { SCAN_INTERVAL: String(POLL_INTERVAL_MS / 1000) },
    ready: /watching this network namespace with netlink;/,
    deadlineMs: POLL_INTERVAL_MS + DELIVERY_SLACK_MS,
    skip: () => netnsSkipReason() ?? ssSkipReason(),
  },
  {
    name: "polling (/proc/net, USE_PROC=1)",
    program: "watcher/main.ts",
    env: { SCAN_INTERVAL: String(POLL_INTERVAL_MS / 1000), USE_PROC: "1" },
    ready: /watching this network namespace with proc;/,
    deadlineMs: POLL_INTERVAL_MS + DELIVERY_SLACK_MS,
    skip: () => netnsSkipReason() ?? ssSkipReason(),
  },
  eventEngine("libbpf", /watching .* with libbpf events/, libbpfSkipReason),
  eventEngine("bpftrace", /watching this network namespace with bpftrace events/, bpftraceSkipReason),
  eventEngine("tracee", /watching this network namespace with tracee events/, traceeSkipReason),
];
