/**
 * The stack under a Docker engine: which compose CLI there is (v2's `docker compose`, else v1's
 * `docker-compose`), whether to use it, and the compose arguments each stack command maps to. The container
 * names are the compose service names (compose.yaml sets `container_name:` to them).
 * @module
 */
import { sh, works } from "./sys.ts";

/** Every profile of compose.yaml: `stop` and `clean` name them all, so that no profile's container is left. */
export const PROFILES = ["ebpf", "pg"] as const;

/** The compose CLI there is: `docker compose` (v2, or docker/compose-v1's plugin), else `docker-compose` (v1). */
export async function findCompose(): Promise<string[] | undefined> {
  if (await works(["docker", "compose", "version"])) return ["docker", "compose"];
  if (await works(["docker-compose", "version"])) return ["docker-compose"];
  return undefined;
}

/** Where the stack runs, and why when it is not where the user may expect. */
export interface RuntimeChoice {
  runtime: "docker" | "netns";
  /** Said once, on stderr, when the choice needs explaining. */
  notice?: string;
}

const INSTALL_COMPOSE =
  "install compose v2 (Docker's docker-compose-plugin) or v1 (Debian: apt-get install " +
  "docker-compose; then `just docker-compose-v1` makes `docker compose` work too)";

/**
 * Docker when an engine answers and a compose CLI is there; the namespace stack otherwise. PORTWATCH_RUNTIME
 * forces one; forcing docker without an engine or a compose CLI is an error that says what is missing.
 * @example
 * ```ts
 * chooseRuntime(undefined, true, undefined); // { runtime: "netns", notice: "a Docker engine answers, but ..." }
 * chooseRuntime(undefined, true, ["docker-compose"]); // { runtime: "docker" }
 * ```
 */
export function chooseRuntime(
  forced: string | undefined,
  engine: boolean,
  compose: string[] | undefined,
): RuntimeChoice {
  if (forced !== undefined && forced !== "" && forced !== "docker" && forced !== "netns") {
    throw new Error(
      `PORTWATCH_RUNTIME=${forced}: expected docker (compose.yaml) or netns (network namespaces)`,
    );
  }
  if (forced === "netns") return { runtime: "netns" };
  if (forced === "docker") {
    if (!engine) throw new Error("PORTWATCH_RUNTIME=docker, but no Docker engine answers `docker info`");
    if (!compose) {
      throw new Error(`PORTWATCH_RUNTIME=docker, but there is no compose CLI: ${INSTALL_COMPOSE}`);
    }
    return { runtime: "docker" };
  }
  if (!engine) return { runtime: "netns" };
  if (!compose) {
    return {
      runtime: "netns",
      notice:
        `a Docker engine answers, but there is no compose CLI, so the stack runs as network namespaces; ` +
        `for containers, ${INSTALL_COMPOSE}`,
    };
  }
  return { runtime: "docker" };
}

/**
 * `compose exec` arguments that run `cmd` in service `name`: detached (`-d`) for spawn, without a TTY (`-T`)
 * when our stdin is not a terminal (scripts, CI), as the user `user` when given.
 * @example
 * ```ts
 * execArgs("nodejs-tester", ["node", "-v"], { detached: true, tty: false });
 * // ["exec", "-d", "-T", "nodejs-tester", "node", "-v"]
 * ```
 */
export function execArgs(
  name: string,
  cmd: string[],
  { detached, tty, user }: { detached: boolean; tty: boolean; user?: string },
): string[] {
  return [
    "exec",
    ...(detached ? ["-d"] : []),
    ...(tty ? [] : ["-T"]),
    ...(user ? ["--user", user] : []),
    name,
    ...cmd,
  ];
}

/** `up` arguments for a stack mode (default, hf, sv, ebpf): the eBPF profile is a top-level flag, before `up`. */
export function upArgs(mode: string): string[] {
  return [...(mode === "ebpf" ? ["--profile", "ebpf"] : []), "up", "-d", "--build"];
}

/** The seed's high-fidelity scan settings, for `up hf` and `up sv` where the environment does not set them. */
export const HF_SETTINGS: Record<string, string> = {
  SCAN_INTERVAL: "1",
  BURST_SCANS: "5",
  BURST_DELAY: "0.02",
};

/** Docker's data root (`docker info`), which compose.yaml mounts for attribution; undefined when unknown. */
export async function dockerDataRoot(): Promise<string | undefined> {
  const out = await sh(["docker", "info", "--format", "{{.DockerRootDir}}"], { check: false }).catch(() =>
    null
  );
  const dir = out?.code === 0 ? out.stdout.trim() : "";
  return dir === "" ? undefined : dir;
}
