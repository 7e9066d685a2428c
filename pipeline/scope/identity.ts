/**
 * Who a process is, for events: the machine's host name, and the container it runs in (id, name, runtime).
 *
 * - `container_id`: CONTAINER_ID when set, else derived from /proc/<pid>/cgroup and /proc/<pid>/mountinfo
 *   (see ./cgroup.ts); null on the host. A short id that the runtime's state completes becomes the full id.
 * - `container_name`, `image`, `compose_project`, `compose_service`: what the runtime's own state on disk says
 *   (Docker's config.v2.json, containerd's and Podman's bundle config.json, containers/storage's
 *   containers.json: see ./runtime_lookup.ts), given a {@link ContainerMetaLookup}; CONTAINER_NAME overrides the
 *   name. Without that state the name falls back to the container's host name (docker sets it to the short id
 *   unless --hostname is given, compose to the service's hostname:, kubernetes to the pod name):
 *   Deno.hostname() for "self", the first line of /proc/<pid>/root/etc/hostname for another pid. A host name
 *   that is just a prefix (12+ hex digits) of the container id says nothing, and gives null.
 * - `runtime`: the runtime the evidence names ("docker", "containerd", ...); null on the host, and when
 *   CONTAINER_ID names a different container than the one detected.
 * - `host`: HOST_NAME, else NODE_NAME (kubernetes' downward API spec.nodeName), else the kernel host name when
 *   this process shares pid 1's UTS namespace (on the host, or a container run with --uts=host), else pid 1's
 *   /etc/hostname through /proc/1/root when readable (a container run with --pid=host as root), else the first
 *   line of HOST_NAME_FILE (default /host/etc/hostname: the host's /etc/hostname mounted read-only), else this
 *   process's own host name, which inside a container is the container's: {@link hostFallbackWarning} says so.
 * @module
 */
import { ConfigError, type EnvSource, firstSet } from "../../infra/env.ts";
import { containerOfPid, type ContainerRef } from "./cgroup.ts";
import { hostNameFileFrom } from "./attribution_settings.ts";
import type { ContainerMetaLookup } from "./runtime_lookup.ts";

/** Who a process is. */
export interface Identity {
  /** The machine's host name. */
  host: string;
  /** The container's id, null on the host. */
  container_id: string | null;
  /** The container's name, null when unknown or on the host. */
  container_name: string | null;
  /** The container runtime, null when unknown or on the host. */
  runtime: string | null;
  /** The container's image as given ("debian:bookworm"); set (maybe null) for containers when the runtime's state was looked up. */
  image?: string | null;
  /** Compose's project (label com.docker.compose.project); set (maybe null) for containers only. */
  compose_project?: string | null;
  /** Compose's service (label com.docker.compose.service); set (maybe null) for containers only. */
  compose_service?: string | null;
}

/** Longest accepted value of an identity setting. */
const MAX_SETTING = 255;

function setting(env: EnvSource, ...names: string[]): string | undefined {
  const s = firstSet(env, ...names);
  if (s === undefined) return undefined;
  // deno-lint-ignore no-control-regex
  if (s.value.length > MAX_SETTING || /[\u0000-\u001f\u007f]/.test(s.value)) {
    throw new ConfigError(s.name, s.value, `at most ${MAX_SETTING} printable characters`);
  }
  return s.value;
}

const firstLine = (text: string) => text.split("\n")[0].trim();

function readTrimmed(path: string): string | undefined {
  try {
    const v = firstLine(Deno.readTextFileSync(path));
    return v === "" ? undefined : v;
  } catch {
    return undefined;
  }
}

function readLink(path: string): string | undefined {
  try {
    return Deno.readLinkSync(path);
  } catch {
    return undefined;
  }
}

/** This process's kernel host name: /proc/sys/kernel/hostname (needs only read), else Deno.hostname(). */
function ownHostname(proc: string): string {
  return readTrimmed(`${proc}/sys/kernel/hostname`) ?? Deno.hostname();
}

/** Where the host name came from: a setting, the shared kernel host name, pid 1's file, HOST_NAME_FILE, or own. */
export type HostSource = "setting" | "kernel" | "pid1" | "file" | "own";

/** The host name and where it came from. */
export interface HostInfo {
  host: string;
  source: HostSource;
}

/**
 * The machine's host name and its source (see the module doc for the order): HOST_NAME, NODE_NAME, the kernel
 * host name when sharing pid 1's UTS namespace, pid 1's /etc/hostname, HOST_NAME_FILE, else this process's own
 * host name (source "own"; inside a container that is the container's, see {@link hostFallbackWarning}).
 * Throws a ConfigError for a bad HOST_NAME, NODE_NAME or HOST_NAME_FILE.
 * @example
 * ```ts
 * detectHostInfo(envOf({ HOST_NAME: "node-a" })); // { host: "node-a", source: "setting" }
 * ```
 */
export function detectHostInfo(env: EnvSource, proc = "/proc"): HostInfo {
  const set = setting(env, "HOST_NAME", "NODE_NAME");
  if (set !== undefined) return { host: set, source: "setting" };
  const file = hostNameFileFrom(env);
  const initUts = readLink(`${proc}/1/ns/uts`);
  const ownUts = readLink(`${proc}/self/ns/uts`);
  if (initUts !== undefined && initUts === ownUts) return { host: ownHostname(proc), source: "kernel" };
  if (initUts !== undefined) {
    const h = readTrimmed(`${proc}/1/root/etc/hostname`);
    if (h !== undefined) return { host: h, source: "pid1" };
  }
  const fromFile = file === null ? undefined : readTrimmed(file);
  if (fromFile !== undefined) return { host: fromFile, source: "file" };
  return { host: ownHostname(proc), source: "own" };
}

/** The machine's host name: {@link detectHostInfo}'s `host`. */
export function detectHost(env: EnvSource, proc = "/proc"): string {
  return detectHostInfo(env, proc).host;
}

/**
 * The warning to log once at start when the host name is this process's own because nothing else could be read
 * (inside a container that is the container's host name, so two watchers on one machine would name two hosts);
 * undefined otherwise.
 * @example
 * ```ts
 * hostFallbackWarning({ host: "3f4e1c2b9a7d", source: "own" }, "/host/etc/hostname"); // "the host's name cannot be read ..."
 * ```
 */
export function hostFallbackWarning(info: HostInfo, hostNameFile: string | null): string | undefined {
  if (info.source !== "own") return undefined;
  const file = hostNameFile ?? "/host/etc/hostname";
  return `the host's name cannot be read (pid 1's /etc/hostname is hidden${
    hostNameFile === null ? "" : ` and ${hostNameFile} is missing`
  }): events name host "${info.host}", this process's own host name, which in a container is the ` +
    `container's; set HOST_NAME, or mount the host's /etc/hostname read-only at ${file}`;
}

/** True when `hostname` is only a prefix (12+ hex digits) of the container id, as docker sets it by default. */
export function isShortIdHostname(hostname: string, containerId: string): boolean {
  return /^[0-9a-f]{12,64}$/.test(hostname) && containerId.startsWith(hostname);
}

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * The container part of an identity for `pid`, given the host name already known; CONTAINER_ID and
 * CONTAINER_NAME in `env` override (pass an empty env for processes other than this one). With `containers`,
 * the runtime's state names the container (see the module doc); read once per container id.
 */
export function identityOfPid(
  env: EnvSource,
  host: string,
  pid: number | "self" = "self",
  proc = "/proc",
  containers?: ContainerMetaLookup,
): Identity {
  const envId = setting(env, "CONTAINER_ID");
  const envName = setting(env, "CONTAINER_NAME");
  const detected: ContainerRef | null = containerOfPid(pid, proc);
  let container_id = envId ?? detected?.id ?? null;
  const agrees = detected !== null && container_id !== null &&
    (detected.id.startsWith(container_id) || container_id.startsWith(detected.id));
  const runtime = agrees ? detected.runtime : null;
  if (container_id === null) return { host, container_id, container_name: envName ?? null, runtime };
  const meta = containers?.get(container_id) ?? null;
  if (meta?.id && HEX64.test(meta.id) && meta.id.startsWith(container_id)) container_id = meta.id;
  let container_name: string | null = envName ?? meta?.name ?? null;
  if (container_name === null) {
    const hostname = pid === "self" ? ownHostname(proc) : readTrimmed(`${proc}/${pid}/root/etc/hostname`);
    container_name = hostname === undefined || isShortIdHostname(hostname, container_id) ? null : hostname;
  }
  if (containers === undefined) return { host, container_id, container_name, runtime };
  return {
    host,
    container_id,
    container_name,
    runtime,
    image: meta?.image ?? null,
    compose_project: meta?.compose_project ?? null,
    compose_service: meta?.compose_service ?? null,
  };
}

/**
 * The identity of a process (default: this one); see the module doc. Throws a ConfigError for a setting that
 * is too long or holds control characters.
 * @param env where CONTAINER_ID, CONTAINER_NAME, HOST_NAME, NODE_NAME and HOST_NAME_FILE are read
 * @param pid the process, or "self"
 * @param proc the proc mount to read
 * @param containers where the runtime's state is read (none: the host name rule only)
 */
export function detectIdentity(
  env: EnvSource,
  pid: number | "self" = "self",
  proc = "/proc",
  containers?: ContainerMetaLookup,
): Identity {
  return identityOfPid(env, detectHost(env, proc), pid, proc, containers);
}

/**
 * The inode of a process's network namespace (the N of "net:[N]"), which identifies the namespace while it
 * exists. Throws Deno.errors.NotFound when the process is gone, PermissionDenied when it may not be inspected.
 */
export function netnsInode(pid: number | "self" = "self", proc = "/proc"): number {
  const ino = Deno.statSync(`${proc}/${pid}/ns/net`).ino;
  if (ino === null) throw new Error(`stat gave no inode for ${proc}/${pid}/ns/net`);
  return ino;
}
