/**
 * Who a process is, for events: the machine's host name, and the container it runs in (id, name, runtime).
 *
 * - `container_id`: CONTAINER_ID when set, else derived from /proc/<pid>/cgroup and /proc/<pid>/mountinfo
 *   (see ./cgroup.ts); null on the host.
 * - `container_name`: CONTAINER_NAME when set; else, for a process in a container, its host name (docker sets
 *   it to the short id unless --hostname is given, compose to the service's hostname:, kubernetes to the pod
 *   name): Deno.hostname() for "self", the first line of /proc/<pid>/root/etc/hostname for another pid. A host
 *   name that is just a prefix (12+ hex digits) of the container id says nothing, and gives null.
 * - `runtime`: the runtime the evidence names ("docker", "containerd", ...); null on the host, and when
 *   CONTAINER_ID names a different container than the one detected.
 * - `host`: HOST_NAME, else NODE_NAME (kubernetes' downward API spec.nodeName), else the kernel host name when
 *   this process shares pid 1's UTS namespace (on the host, or a container run with --uts=host), else pid 1's
 *   /etc/hostname through /proc/1/root when readable (a container run with --pid=host as root), else this
 *   process's own host name, which inside a container is the container's: set HOST_NAME there.
 * @module
 */
import { ConfigError, type EnvSource, firstSet } from "../events/env.ts";
import { containerOfPid, type ContainerRef } from "./cgroup.ts";

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

/**
 * The machine's host name (see the module doc for the order): HOST_NAME, NODE_NAME, the kernel host name when
 * sharing pid 1's UTS namespace, pid 1's /etc/hostname, else this process's host name.
 */
export function detectHost(env: EnvSource, proc = "/proc"): string {
  const set = setting(env, "HOST_NAME", "NODE_NAME");
  if (set !== undefined) return set;
  const initUts = readLink(`${proc}/1/ns/uts`);
  const ownUts = readLink(`${proc}/self/ns/uts`);
  if (initUts !== undefined && initUts === ownUts) return ownHostname(proc);
  if (initUts !== undefined) {
    const h = readTrimmed(`${proc}/1/root/etc/hostname`);
    if (h !== undefined) return h;
  }
  return ownHostname(proc);
}

/** True when `hostname` is only a prefix (12+ hex digits) of the container id, as docker sets it by default. */
export function isShortIdHostname(hostname: string, containerId: string): boolean {
  return /^[0-9a-f]{12,64}$/.test(hostname) && containerId.startsWith(hostname);
}

/**
 * The container part of an identity for `pid`, given the host name already known; CONTAINER_ID and
 * CONTAINER_NAME in `env` override (pass an empty env for processes other than this one).
 */
export function identityOfPid(
  env: EnvSource,
  host: string,
  pid: number | "self" = "self",
  proc = "/proc",
): Identity {
  const envId = setting(env, "CONTAINER_ID");
  const envName = setting(env, "CONTAINER_NAME");
  const detected: ContainerRef | null = containerOfPid(pid, proc);
  const container_id = envId ?? detected?.id ?? null;
  const agrees = detected !== null && container_id !== null &&
    (detected.id.startsWith(container_id) || container_id.startsWith(detected.id));
  const runtime = agrees ? detected.runtime : null;
  let container_name: string | null = envName ?? null;
  if (container_name === null && container_id !== null) {
    const hostname = pid === "self" ? ownHostname(proc) : readTrimmed(`${proc}/${pid}/root/etc/hostname`);
    container_name = hostname === undefined || isShortIdHostname(hostname, container_id) ? null : hostname;
  }
  return { host, container_id, container_name, runtime };
}

/**
 * The identity of a process (default: this one); see the module doc. Throws a ConfigError for a setting that
 * is too long or holds control characters.
 * @param env where CONTAINER_ID, CONTAINER_NAME, HOST_NAME and NODE_NAME are read
 * @param pid the process, or "self"
 * @param proc the proc mount to read
 */
export function detectIdentity(env: EnvSource, pid: number | "self" = "self", proc = "/proc"): Identity {
  return identityOfPid(env, detectHost(env, proc), pid, proc);
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
