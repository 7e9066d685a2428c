/**
 * Host-wide discovery of network namespaces: every namespace some process is in (walking /proc/<pid>/ns/net)
 * plus the named ones of `ip netns add` (/run/netns/NAME) that no process is in. Each is attributed to the
 * container of one member process. A scanner then reads each namespace through its member
 * (`new ProcNetSource({ root: `/proc/${ns.pid}/net` })`) or its path (`new NetlinkSource({ netns: ns.path })`).
 *
 * Caveats: a namespace is attributed to one member (the lowest pid, kept while it lives), so the several
 * containers of a kubernetes pod, which share one namespace, are reported as the first member's (usually the
 * pause container; its `podUid` is in the cgroup path). Processes whose ns link cannot be read (another user's
 * without privileges, or a ptrace-restricted one) and processes that exit during the walk are skipped.
 * Namespace inodes are reused by the kernel after a namespace is freed; {@link NamespaceWatcher} treats an
 * inode whose members were all replaced between two refreshes as a new namespace. A namespace's identity is read
 * when its member is chosen (discovery, or a member switch), not on every refresh.
 * @module
 */
import type { EnvSource } from "../../infra/env.ts";
import { detectHost, type Identity, identityOfPid } from "./identity.ts";
import type { ContainerMetaLookup } from "./runtime_lookup.ts";

/** One network namespace. */
export interface NetNamespace {
  /** Its inode, the N of "net:[N]". */
  inode: number;
  /** One member process, the lowest pid at discovery; 0 for a named namespace no process is in. */
  pid: number;
  /** Every process in it, ascending; empty for a named namespace no process is in. */
  pids: number[];
  /** Who it belongs to, from the member's cgroup (container null for the host's and for non-container ones). */
  identity: Identity;
  /** A path to open it by: /proc/<pid>/ns/net, or /run/netns/NAME when no process is in it. */
  path: string;
  /** Its `ip netns` name when it is bind-mounted in the netns directory. */
  name?: string;
}

/** Options of {@link discoverNamespaces} and {@link NamespaceWatcher}. */
export interface DiscoverOptions {
  /** Where named namespaces are bind-mounted (default "/run/netns"); missing is fine. */
  netnsDir?: string;
  /** HOST_NAME / NODE_NAME for `identity.host` (default: Deno.env). CONTAINER_ID/NAME are not applied. */
  env?: EnvSource;
  /** Where containers' names, images and compose labels are read (default: none, the host name rule). */
  containers?: ContainerMetaLookup;
}

const NET_LINK = /^net:\[(\d+)\]$/;

/** Every process's network namespace inode: inode -> pids ascending. Vanished and unreadable pids are skipped. */
export function namespaceMembers(proc = "/proc"): Map<number, number[]> {
  const out = new Map<number, number[]>();
  const pids: number[] = [];
  for (const e of Deno.readDirSync(proc)) {
    if (/^\d+$/.test(e.name)) pids.push(Number(e.name));
  }
  pids.sort((a, b) => a - b);
  for (const pid of pids) {
    let link: string;
    try {
      link = Deno.readLinkSync(`${proc}/${pid}/ns/net`);
    } catch {
      continue; // exited, a kernel thread without namespaces, or not ours to inspect
    }
    const m = NET_LINK.exec(link);
    if (!m) continue;
    const inode = Number(m[1]);
    const list = out.get(inode);
    if (list === undefined) out.set(inode, [pid]);
    else list.push(pid);
  }
  return out;
}

/**
 * Named namespaces in `dir`: name -> inode. Only nsfs bind mounts count (a leftover empty file whose mount is
 * gone has another device); a missing directory gives an empty map.
 */
export function namedNamespaces(dir = "/run/netns", proc = "/proc"): Map<string, number> {
  const out = new Map<string, number>();
  let nsfsDev: number;
  let entries: Deno.DirEntry[];
  try {
    nsfsDev = Deno.statSync(`${proc}/self/ns/net`).dev;
    entries = [...Deno.readDirSync(dir)];
  } catch {
    return out;
  }
  for (const e of entries) {
    try {
      const st = Deno.statSync(`${dir}/${e.name}`);
      if (st.dev === nsfsDev && st.ino !== null) out.set(e.name, st.ino);
    } catch {
      // deleted meanwhile
    }
  }
  return out;
}

/** An env without the container overrides, so that they do not describe other processes. */
function hostOnly(env: EnvSource): EnvSource {
  return {
    get: (name) => (name === "CONTAINER_ID" || name === "CONTAINER_NAME" ? undefined : env.get(name)),
  };
}

/** Deno.env, reading as unset what --allow-env does not grant. */
function defaultEnv(): EnvSource {
  return {
    get: (name) => {
      try {
        return Deno.env.get(name);
      } catch {
        return undefined;
      }
    },
  };
}

/** Builds namespaces from members, reusing a preferred member pid when it is still in. */
function build(
  members: Map<number, number[]>,
  named: Map<string, number>,
  env: EnvSource,
  proc: string,
  netnsDir: string,
  keep: (inode: number, pids: number[]) => { pid: number; identity: Identity } | undefined,
  containers?: ContainerMetaLookup,
): NetNamespace[] {
  const host = detectHost(env, proc);
  const nameOf = new Map<number, string>();
  for (const [name, inode] of named) if (!nameOf.has(inode)) nameOf.set(inode, name);
  const out: NetNamespace[] = [];
  for (const [inode, pids] of members) {
    const kept = keep(inode, pids);
    const pid = kept?.pid ?? pids[0];
    const identity = kept?.identity ?? identityOfPid(env, host, pid, proc, containers);
    const ns: NetNamespace = { inode, pid, pids, identity, path: `${proc}/${pid}/ns/net` };
    const name = nameOf.get(inode);
    if (name !== undefined) ns.name = name;
    out.push(ns);
  }
  for (const [inode, name] of nameOf) {
    if (members.has(inode)) continue;
    out.push({
      inode,
      pid: 0,
      pids: [],
      identity: { host, container_id: null, container_name: null, runtime: null },
      path: `${netnsDir}/${name}`,
      name,
    });
  }
  return out.sort((a, b) => a.inode - b.inode);
}

/**
 * Every network namespace on the machine (as far as `proc` shows: the pid namespace it belongs to), sorted by
 * inode; see the module doc.
 */
export function discoverNamespaces(proc = "/proc", options: DiscoverOptions = {}): NetNamespace[] {
  const netnsDir = (options.netnsDir ?? "/run/netns").replace(/\/+$/, "");
  return build(
    namespaceMembers(proc),
    namedNamespaces(netnsDir, proc),
    hostOnly(options.env ?? defaultEnv()),
    proc,
    netnsDir,
    () => undefined,
    options.containers,
  );
}

/** What changed between two {@link NamespaceWatcher.refresh} calls. */
export interface NamespaceChanges {
  /** Namespaces not there at the previous refresh (all of them at the first). */
  added: NetNamespace[];
  /** Namespaces gone since the previous refresh (as they were last seen). */
  removed: NetNamespace[];
  /** Namespaces kept whose member pid changed (the old member exited); identity re-read from the new one. */
  memberChanged: NetNamespace[];
  /** Every namespace now. */
  current: NetNamespace[];
}

/**
 * Notices network namespaces appearing and vanishing between calls of {@link NamespaceWatcher.refresh}. A
 * namespace keeps its member pid while that process is in it; when it exits another member (the lowest) takes
 * over and the namespace is kept (reported in `memberChanged`). A namespace only bind-mounted keeps pid 0 and
 * its /run/netns path.
 */
export class NamespaceWatcher {
  readonly #proc: string;
  readonly #netnsDir: string;
  readonly #env: EnvSource;
  readonly #containers?: ContainerMetaLookup;
  #known = new Map<number, NetNamespace>();

  /** A watcher over `proc` (default "/proc"); nothing is read until {@link NamespaceWatcher.refresh}. */
  constructor(proc = "/proc", options: DiscoverOptions = {}) {
    this.#proc = proc;
    this.#netnsDir = (options.netnsDir ?? "/run/netns").replace(/\/+$/, "");
    this.#env = hostOnly(options.env ?? defaultEnv());
    this.#containers = options.containers;
  }

  /** The namespaces as of the last refresh. */
  get current(): NetNamespace[] {
    return [...this.#known.values()];
  }

  /** Discover again and compare with the previous call. */
  refresh(): NamespaceChanges {
    const members = namespaceMembers(this.#proc);
    const named = namedNamespaces(this.#netnsDir, this.#proc);
    const prev = this.#known;
    const keep = (inode: number, pids: number[]) => {
      const old = prev.get(inode);
      return old !== undefined && old.pid !== 0 && pids.includes(old.pid) ? old : undefined;
    };
    const current = build(members, named, this.#env, this.#proc, this.#netnsDir, keep, this.#containers);
    const added: NetNamespace[] = [];
    const removed: NetNamespace[] = [];
    const memberChanged: NetNamespace[] = [];
    const next = new Map<number, NetNamespace>();
    for (const ns of current) {
      next.set(ns.inode, ns);
      const old = prev.get(ns.inode);
      if (old === undefined) {
        added.push(ns);
      } else if (!sameNamespace(old, ns)) {
        removed.push(old); // the inode was freed and reused by a new namespace
        added.push(ns);
      } else if (old.pid !== ns.pid) {
        memberChanged.push(ns);
      }
    }
    for (const [inode, old] of prev) if (!next.has(inode)) removed.push(old);
    this.#known = next;
    return { added, removed, memberChanged, current };
  }
}

/** Whether `now` is plausibly the namespace `old` was: a member or its name survived. */
function sameNamespace(old: NetNamespace, now: NetNamespace): boolean {
  if (old.name !== undefined && old.name === now.name) return true;
  if (old.pids.length === 0 || now.pids.length === 0) return old.name !== undefined && old.name === now.name;
  const nowPids = new Set(now.pids);
  return old.pids.some((p) => nowPids.has(p));
}
