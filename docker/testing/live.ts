/**
 * Test helpers for the compose stack under a real Docker engine (docker/live_test.ts): why it cannot run here,
 * an engine started for the test when none answers (and stopped again, the host's network restored), the
 * compose CLI with the test's own settings, and the listener's events as the tests read them.
 * @module
 */
import { fileURLToPath } from "node:url";
import { findCompose } from "../../stack/compose.ts";
import { sh, works } from "../../stack/sys.ts";
import { eventsFor } from "../../stack/verify.ts";
import { waitUntil } from "../../infra/wait.ts";
export { freePort } from "../../testing/port.ts";
import type { PortEvent } from "../../events/schema.ts";

/** The repository root. */
export const ROOT = fileURLToPath(new URL("../../", import.meta.url)).replace(/\/$/, "");
/** The containers compose.yaml names (`container_name:`), which the seed's commands address. */
export const NAMES = ["listner-api", "portwatcher", "nodejs-tester", "python-tester"];
/** The names of the profiles' containers. */
export const PROFILE_NAMES = ["ebpf-portwatcher", "listner-api-2"];

async function has(cmd: string, args = ["--version"]): Promise<boolean> {
  return await works([cmd, ...args]);
}

/** Why the live stack cannot run here, or undefined when it can (an engine may still have to be started). */
export async function liveSkipReason(): Promise<string | undefined> {
  if (Deno.build.os !== "linux") return `Docker containers need Linux, this is ${Deno.build.os}`;
  if (Deno.uid() !== 0) return `not root (uid ${Deno.uid()}): the test starts dockerd and runs containers`;
  if (!await has("docker")) return "no docker CLI (Debian: apt-get install docker.io docker-compose)";
  if (!await works(["docker", "info"]) && !await has("dockerd")) {
    return "no Docker engine answers and there is no dockerd to start (apt-get install docker.io)";
  }
  if (!await has("docker-compose", ["version"]) && !await works(["docker", "compose", "version"])) {
    return "no compose CLI (apt-get install docker-compose)";
  }
  return undefined;
}

/** A Docker engine for the test: the one that answers, else one started by docker/engine.sh (and stopped). */
export interface Engine {
  /** True when the test started it. */
  started: boolean;
  /** Its data root, which compose.yaml mounts for attribution. */
  dataRoot: string;
  stop(): Promise<void>;
}

/** The host's network state that dockerd changes: iptables' filter and nat rules and ip_forward. */
export async function networkState(): Promise<string> {
  const parts = await Promise.all([
    sh(["iptables", "-S"], { check: false }),
    sh(["iptables", "-t", "nat", "-S"], { check: false }),
    sh(["ip6tables", "-S"], { check: false }),
    sh(["sysctl", "-n", "net.ipv4.ip_forward"], { check: false }),
    sh(["ip", "-o", "link", "show", "type", "bridge"], { check: false }),
  ]);
  return parts.map((p) => p.stdout.replace(/\d+: /g, "")).join("\n");
}

/** Use the engine that answers, or start one with its own data root; throws with dockerd's log if it fails. */
export async function engine(): Promise<Engine> {
  let started = false;
  if (!await works(["docker", "info"])) {
    const out = await sh(["bash", `${ROOT}/docker/engine.sh`, "start"], { check: false });
    if (out.code !== 0) throw new Error(`dockerd did not start: ${out.stdout}${out.stderr}`);
    started = true;
  }
  const dataRoot = (await sh(["docker", "info", "--format", "{{.DockerRootDir}}"])).stdout.trim();
  return {
    started,
    dataRoot,
    async stop() {
      if (started) await sh(["bash", `${ROOT}/docker/engine.sh`, "stop"], { check: false });
    },
  };
}

/** The containers of `names` that exist (running or not). */
export async function existing(names: string[]): Promise<string[]> {
  const out = await sh(["docker", "ps", "-a", "--format", "{{.Names}}"]);
  const all = new Set(out.stdout.split("\n").map((s) => s.trim()));
  return names.filter((n) => all.has(n));
}

/** Output of a command run to its end. */
export interface Out {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `cmd` with `env` added (cwd: the repository root), to its end, output captured. */
export async function run(cmd: string[], env: Record<string, string> = {}): Promise<Out> {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    cwd: ROOT,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Like {@link run}, throwing with the output when the command fails. */
export async function ok(cmd: string[], env: Record<string, string> = {}): Promise<string> {
  const out = await run(cmd, env);
  if (out.code !== 0) {
    throw new Error(
      `${cmd.join(" ")} failed (${out.code}):\n${out.stdout.slice(-3000)}\n${out.stderr.slice(-3000)}`,
    );
  }
  return out.stdout;
}

/** The compose CLI found here, as a command prefix. */
export async function composeCli(): Promise<string[]> {
  const cli = await findCompose();
  if (!cli) throw new Error("no compose CLI");
  return cli;
}

/** A stored event as GET /events returns it. */
export type Stored = PortEvent & {
  ts: string;
  image?: string | null;
  compose_project?: string | null;
  compose_service?: string | null;
};

/** Wait until the events of `port` pass `done`; returns them. */
export async function waitEvents(
  listener: string,
  port: number,
  what: string,
  done: (events: Stored[]) => boolean,
  { container, ms = 20_000 }: { container?: string; ms?: number } = {},
): Promise<Stored[]> {
  let last: Stored[] = [];
  try {
    await waitUntil(
      what,
      async () => done(last = await eventsFor(listener, port, undefined, container) as Stored[]),
      ms,
      200,
    );
  } catch (e) {
    const seen = last.map((e) => `${e.event}/${e.source}/${e.container_name}`).join(" ") || "none";
    throw new Error(`${(e as Error).message}; events of port ${port}: ${seen}`);
  }
  return last;
}

/** `n` events of kind `kind` and source `source`. */
export function count(events: Stored[], kind: string, source?: string): number {
  return events.filter((e) => e.event === kind && (source === undefined || e.source === source)).length;
}

/** What `docker inspect` says of a container: full id, image as given, compose labels, restarts, state. */
export interface Inspected {
  id: string;
  image: string;
  project: string;
  service: string;
  restarts: number;
  running: boolean;
  exitCode: number;
  pid: number;
}

/** `docker inspect NAME`, the parts the tests compare events with. */
export async function inspect(name: string): Promise<Inspected> {
  const [c] = JSON.parse(await ok(["docker", "inspect", name]));
  const labels = c.Config.Labels ?? {};
  return {
    id: c.Id,
    image: c.Config.Image,
    project: labels["com.docker.compose.project"] ?? "",
    service: labels["com.docker.compose.service"] ?? "",
    restarts: c.RestartCount,
    running: c.State.Running,
    exitCode: c.State.ExitCode,
    pid: c.State.Pid,
  };
}

/** The children of a process (host pids), from /proc. */
export function childrenOf(pid: number): number[] {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/task/${pid}/children`).trim().split(/\s+/).filter((s) => s)
      .map(Number);
  } catch {
    return [];
  }
}
