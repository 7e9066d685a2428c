/** The no-Docker stack's state on disk (./.stack/state.json): what `up` made, so `stop` can undo all of it. */
import { dirname, join } from "node:path";

/** One "container": a network namespace with its own cgroup and veth link to the host. */
export interface ContainerState {
  name: string;
  /** ip netns name. */
  ns: string;
  /** Host-side veth interface. */
  veth: string;
  /** Host-side address (the listener is reached there as `listner-api`) and the namespace's address. */
  hostIp: string;
  nsIp: string;
  /** cgroup v2 directory (absolute) and the container id it names. */
  cgroup: string;
  containerId: string;
  /** The watcher's pid (0 under supervisord, which owns it). */
  watcherPid: number;
  /** Other pids started inside it (testers). */
  pids: number[];
}

/** The whole stack. */
export interface StackState {
  prefix: string;
  dir: string;
  listener: { pid: number; port: number; url: string; logPath: string };
  containers: Record<string, ContainerState>;
  /** cgroup directory that holds the containers' cgroups. */
  cgroupParent: string;
  supervisor?: { conf: string; pid?: number };
  mode: string;
}

/** Where the stack keeps its state: STACK_DIR, default ./.stack. */
export function stackDir(env = Deno.env): string {
  return env.get("STACK_DIR") ?? join(Deno.cwd(), ".stack");
}

/** Read the state, or undefined when no stack is up. */
export function readState(dir: string): StackState | undefined {
  try {
    return JSON.parse(Deno.readTextFileSync(join(dir, "state.json")));
  } catch {
    return undefined;
  }
}

/** Write the state atomically. */
export function writeState(state: StackState): void {
  const path = join(state.dir, "state.json");
  Deno.mkdirSync(dirname(path), { recursive: true });
  Deno.writeTextFileSync(`${path}.tmp`, JSON.stringify(state, null, 2));
  Deno.renameSync(`${path}.tmp`, path);
}
