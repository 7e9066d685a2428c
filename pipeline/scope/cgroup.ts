/**
 * Which container a process runs in, from the text of /proc/<pid>/cgroup and /proc/<pid>/mountinfo (pure
 * parsers), plus cgroup v2 helpers: the v2 path of a pid, the "cgroup id" of a cgroup directory (its inode,
 * what eBPF's bpf_get_current_cgroup_id returns) and {@link CgroupIndex}, which maps cgroup ids back to paths
 * and containers.
 *
 * The cgroup path is the primary evidence: runtimes name the cgroup after the container (docker-<id>.scope,
 * /docker/<id>, cri-containerd-<id>.scope, crio-<id>.scope, libpod-<id>.scope, kubepods/.../pod<uid>/<id>,
 * /actions_job/<id>). The innermost container in the path wins (docker in a kubernetes pod, kubernetes in
 * docker as with kind). A process in a private cgroup namespace sees only "0::/", so mountinfo is the fallback:
 * the files a runtime bind-mounts into the container (/etc/hostname, /etc/hosts, /etc/resolv.conf,
 * /run/.containerenv) come from a directory named after the container.
 *
 * Runtimes: "docker" (also moby's containerd namespace and GitHub Actions job containers), "containerd",
 * "cri-o", "podman", "kubernetes" (a pod's container whose runtime the path does not name, cgroupfs driver),
 * "unknown" (a bare 64-hex segment with no telling parent). `podUid` is set when the container sits directly in
 * a kubernetes pod's cgroup (or, from mountinfo, when kubelet's pod directory is mounted).
 * @module
 */

/** Container runtimes {@link containerOf} can name. */
export type ContainerRuntime = "docker" | "containerd" | "cri-o" | "podman" | "kubernetes" | "unknown";

/** A container a process belongs to. */
export interface ContainerRef {
  /** Which runtime made it, as far as the evidence tells. */
  runtime: ContainerRuntime;
  /** The container id: 64 lowercase hex digits, or a shorter hex id where the runtime used one. */
  id: string;
  /** The kubernetes pod's uid (8-4-4-4-12 with dashes, or 32 hex for static pods) when in a pod. */
  podUid?: string;
}

/** One line of /proc/<pid>/cgroup: "hierarchy-ID:controller-list:cgroup-path". */
export interface CgroupLine {
  /** 0 for the cgroup v2 (unified) line. */
  hierarchy: number;
  /** Controllers of a v1 hierarchy, e.g. ["cpu", "cpuacct"] or ["name=systemd"]; empty for v2. */
  controllers: string[];
  /** The path, relative to the reader's cgroup namespace root, e.g. "/system.slice/docker-<id>.scope". */
  path: string;
}

/** The lines of a /proc/<pid>/cgroup text; malformed lines are skipped. */
export function parseCgroupFile(text: string): CgroupLine[] {
  const out: CgroupLine[] = [];
  for (const line of text.split("\n")) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    out.push({ hierarchy: Number(m[1]), controllers: m[2] === "" ? [] : m[2].split(","), path: m[3] });
  }
  return out;
}

/** The cgroup v2 path ("0::PATH" line) in a /proc/<pid>/cgroup text, or null when it has none (pure v1). */
export function cgroupV2PathIn(text: string): string | null {
  return parseCgroupFile(text).find((l) => l.hierarchy === 0 && l.controllers.length === 0)?.path ?? null;
}

const ID = "([0-9a-f]{12,64})";
/** Segments that name the container and its runtime themselves. conmon's scopes (libpod-conmon-, crio-conmon-) fail the hex. */
const NAMED_SEGMENTS: [RegExp, ContainerRuntime][] = [
  [new RegExp(`^docker-${ID}\\.scope$`), "docker"],
  [new RegExp(`^cri-containerd-${ID}\\.scope$`), "containerd"],
  [new RegExp(`^nerdctl-${ID}\\.scope$`), "containerd"],
  [new RegExp(`^crio-${ID}(?:\\.scope)?$`), "cri-o"],
  [new RegExp(`^libpod-${ID}(?:\\.scope)?$`), "podman"],
];
const HEX_SEGMENT = /^[0-9a-f]{12,64}$/;
const HEX64 = /^[0-9a-f]{64}$/;
const POD_UID = "([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}|[0-9a-f]{32})";
/**
 * "pod<uid>" (cgroupfs) or "kubepods[-<qos>]-pod<uid_with_underscores>.slice" (systemd; kind nests it as
 * "kubelet-kubepods-<qos>-pod<uid>.slice").
 */
const POD_SEGMENT = new RegExp(`^(?:[a-z0-9]+-)*pod${POD_UID}(?:\\.slice)?$`);
/** Parents under which a bare hex segment is a container of that runtime. */
const BARE_PARENTS: Record<string, ContainerRuntime> = {
  docker: "docker",
  actions_job: "docker", // GitHub Actions job containers (docker --cgroup-parent actions_job)
  moby: "docker", // docker's containerd namespace
  "k8s.io": "containerd",
  default: "containerd",
};

function podUidOf(segment: string | undefined): string | undefined {
  const m = segment === undefined ? null : POD_SEGMENT.exec(segment);
  return m ? m[1].replaceAll("_", "-") : undefined;
}

/**
 * The innermost container named by one cgroup path, or null. A bare hex segment counts after "docker",
 * "actions_job", "moby", "k8s.io", "default", a pod segment, or "ecs/<task>"; elsewhere only a full 64-hex one does.
 */
export function containerFromCgroupPath(path: string): ContainerRef | null {
  const segs = path.split("/").filter((s) => s !== "");
  for (let i = segs.length - 1; i >= 0; i--) {
    const seg = segs[i];
    let found: { runtime: ContainerRuntime; id: string } | undefined;
    for (const [re, runtime] of NAMED_SEGMENTS) {
      const m = re.exec(seg);
      if (m) {
        found = { runtime, id: m[1] };
        break;
      }
    }
    if (!found && HEX_SEGMENT.test(seg)) {
      const parent = segs[i - 1];
      if (parent !== undefined && Object.hasOwn(BARE_PARENTS, parent)) {
        found = { runtime: BARE_PARENTS[parent], id: seg };
      } else if (podUidOf(parent) !== undefined) found = { runtime: "kubernetes", id: seg };
      else if (segs[i - 2] === "ecs" && /^[0-9a-f]{32}$/.test(parent ?? "")) {
        found = { runtime: "docker", id: seg };
      } else if (HEX64.test(seg)) found = { runtime: "unknown", id: seg };
    }
    if (found) {
      const podUid = podUidOf(segs[i - 1]);
      return podUid === undefined ? found : { ...found, podUid };
    }
  }
  return null;
}

/**
 * The container named by a /proc/<pid>/cgroup text, or null (a host process, or a private cgroup namespace
 * showing "/"). The v2 line is read first, then the v1 lines in order.
 */
export function containerFromCgroup(text: string): ContainerRef | null {
  const lines = parseCgroupFile(text);
  const ordered = [...lines.filter((l) => l.hierarchy === 0), ...lines.filter((l) => l.hierarchy !== 0)];
  for (const l of ordered) {
    const ref = containerFromCgroupPath(l.path);
    if (ref) return ref;
  }
  return null;
}

/** One line of /proc/<pid>/mountinfo (the fields used here), with octal escapes (\040) decoded. */
export interface MountInfoLine {
  /** The directory of the mounted filesystem that is mounted (field 4), e.g. "/var/lib/docker/containers/<id>/hostname". */
  root: string;
  /** Where it is mounted, relative to the process's root (field 5). */
  mountPoint: string;
  /** Filesystem type (after the "-" separator). */
  fsType: string;
  /** Mount source, e.g. "/dev/sda1" or "overlay". */
  source: string;
}

const unescapeMount = (s: string) =>
  s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** The lines of a /proc/<pid>/mountinfo text; malformed lines are skipped. */
export function parseMountInfo(text: string): MountInfoLine[] {
  const out: MountInfoLine[] = [];
  for (const line of text.split("\n")) {
    const f = line.trim().split(" ");
    const sep = f.indexOf("-", 6);
    if (sep < 0 || sep + 1 >= f.length) continue;
    out.push({
      root: unescapeMount(f[3]),
      mountPoint: unescapeMount(f[4]),
      fsType: f[sep + 1] ?? "",
      source: unescapeMount(f[sep + 2] ?? ""),
    });
  }
  return out;
}

/**
 * The mount point of the cgroup v2 hierarchy in a mountinfo text: "/sys/fs/cgroup" on unified hosts,
 * "/sys/fs/cgroup/unified" on hybrid ones; null when none is mounted. A mount of the hierarchy's root is
 * preferred over a bind mount of a subtree.
 */
export function cgroup2MountIn(mountinfoText: string): string | null {
  const v2 = parseMountInfo(mountinfoText).filter((m) => m.fsType === "cgroup2");
  return (v2.find((m) => m.root === "/") ?? v2[0])?.mountPoint ?? null;
}

/** Mount points a runtime fills from the container's own directory, most telling first. */
const IDENTITY_MOUNTS = ["/run/.containerenv", "/", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf"];
/** Files shared by a kubernetes pod's containers (they come from the pod sandbox, not the container). */
const POD_LEVEL_MOUNTS = new Set(["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"]);

const CONTAINERD_TASK =
  /\/io\.containerd\.runtime\.v[12]\.(?:task|linux)\/([^/]+)\/([0-9a-f]{12,64})(?:\/|$)/;
const CONTAINERS_STORAGE = /(?:^|\/)overlay-containers\/([0-9a-f]{12,64})\/userdata(?:\/|$)/;
const DOCKER_CONTAINERS = /(?:^|\/)containers\/([0-9a-f]{12,64})\/(?:hostname|hosts|resolv\.conf)$/;
const KUBELET_POD = new RegExp(`(?:^|/)pods/${POD_UID}/(?:etc-hosts$|containers/|volumes/)`);

/**
 * The container named by a /proc/<pid>/mountinfo text, or null. Only mounts at /run/.containerenv, /,
 * /etc/hostname, /etc/hosts and /etc/resolv.conf are read (their root field), so a host's mounts of other
 * containers' files are not mistaken for its own. Inside a kubernetes pod (kubelet's pods/<uid>/ directory is
 * mounted) /etc/hostname, /etc/hosts and /etc/resolv.conf name the pod sandbox, not the container, and are not
 * used; the result is then null unless /run/.containerenv (cri-o) or a containerd task path names it.
 */
export function containerFromMountinfo(text: string): ContainerRef | null {
  const mounts = parseMountInfo(text);
  let podUid: string | undefined;
  for (const m of mounts) {
    const p = KUBELET_POD.exec(m.root);
    if (p) {
      podUid = p[1].replaceAll("_", "-");
      break;
    }
  }
  for (const point of IDENTITY_MOUNTS) {
    if (podUid !== undefined && POD_LEVEL_MOUNTS.has(point)) continue;
    for (const m of mounts) {
      if (m.mountPoint !== point) continue;
      let found: { runtime: ContainerRuntime; id: string } | undefined;
      const task = CONTAINERD_TASK.exec(m.root);
      const storage = CONTAINERS_STORAGE.exec(m.root);
      const docker = DOCKER_CONTAINERS.exec(m.root);
      if (task) found = { runtime: task[1] === "moby" ? "docker" : "containerd", id: task[2] };
      else if (storage) found = { runtime: podUid !== undefined ? "cri-o" : "podman", id: storage[1] };
      else if (docker) found = { runtime: "docker", id: docker[1] };
      if (found) return podUid === undefined ? found : { ...found, podUid };
    }
  }
  return null;
}

/** The container of a process from its cgroup text (first) and mountinfo text (fallback); null on a host. */
export function containerOf(
  cgroupText: string | null,
  mountinfoText: string | null = null,
): ContainerRef | null {
  return (cgroupText === null ? null : containerFromCgroup(cgroupText)) ??
    (mountinfoText === null ? null : containerFromMountinfo(mountinfoText));
}

const readOrNull = (path: string): string | null => {
  try {
    return Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.PermissionDenied) return null;
    throw e;
  }
};

/**
 * The container of a running process, from `${proc}/<pid>/cgroup` and `${proc}/<pid>/mountinfo`; null on the
 * host or when neither file can be read (the process vanished, or another user's without privileges).
 */
export function containerOfPid(pid: number | "self" = "self", proc = "/proc"): ContainerRef | null {
  const cg = readOrNull(`${proc}/${pid}/cgroup`);
  const fromCgroup = cg === null ? null : containerFromCgroup(cg);
  if (fromCgroup) return fromCgroup;
  const mi = readOrNull(`${proc}/${pid}/mountinfo`);
  return mi === null ? null : containerFromMountinfo(mi);
}

/** The cgroup v2 path of a process ("/system.slice/docker-<id>.scope"), or null (pure v1 host, or gone). */
export function cgroupPathOf(pid: number | "self" = "self", proc = "/proc"): string | null {
  const text = readOrNull(`${proc}/${pid}/cgroup`);
  return text === null ? null : cgroupV2PathIn(text);
}

const rootCache = new Map<string, string | null>();

/**
 * Where the cgroup v2 hierarchy is mounted, from `${proc}/self/mountinfo` (cached): "/sys/fs/cgroup" or, on
 * hybrid hosts, "/sys/fs/cgroup/unified"; null when it is not mounted.
 */
export function cgroup2Root(proc = "/proc"): string | null {
  if (!rootCache.has(proc)) {
    const text = readOrNull(`${proc}/self/mountinfo`);
    rootCache.set(proc, text === null ? null : cgroup2MountIn(text));
  }
  return rootCache.get(proc)!;
}

/**
 * The cgroup id of a cgroup v2 path: the inode of its directory under the v2 mount (kernfs node ids are inode
 * numbers on 64-bit kernels, so this equals what bpf_get_current_cgroup_id returns for a task in it). Throws
 * Deno.errors.NotFound when the cgroup does not exist, and an Error for paths outside the reader's cgroup
 * namespace ("/../..") or when no v2 hierarchy is mounted.
 * @param path a v2 path as /proc/<pid>/cgroup shows it, e.g. "/system.slice/docker-<id>.scope"
 * @param root the v2 mount point; default {@link cgroup2Root}
 */
export function cgroupIdOf(path: string, root: string | null = cgroup2Root()): number {
  if (root === null) throw new Error("no cgroup v2 hierarchy is mounted");
  if (path.split("/").includes("..")) {
    throw new Error(`cgroup path ${path} is outside this cgroup namespace and has no directory here`);
  }
  const ino = Deno.statSync(`${root.replace(/\/+$/, "")}/${path.replace(/^\/+/, "")}`).ino;
  if (ino === null) throw new Error(`stat gave no inode for cgroup ${path}`);
  return ino;
}

/** One cgroup v2 directory. */
export interface CgroupEntry {
  /** Its cgroup id (directory inode). */
  id: number;
  /** Its path relative to the v2 mount, "/" for the root. */
  path: string;
  /** The container its path names (innermost), or null. */
  container: ContainerRef | null;
}

/** Options of {@link CgroupIndex}. */
export interface CgroupIndexOptions {
  /** The cgroup v2 mount point; default {@link cgroup2Root} (falls back to "/sys/fs/cgroup"). */
  root?: string;
  /** A lookup miss walks the tree again only when the last walk is at least this old (default 1000 ms). */
  minRefreshMs?: number;
}

/**
 * Maps cgroup ids (what eBPF reports) to cgroup paths and containers. The tree under the v2 mount is walked on
 * the first lookup, and again on a miss (a cgroup made since) unless the last walk was less than
 * `minRefreshMs` ago; {@link CgroupIndex.refresh} walks now. Directories that vanish during a walk are skipped.
 */
export class CgroupIndex {
  /** The v2 mount point walked. */
  readonly root: string;
  readonly #minRefreshMs: number;
  #byId = new Map<number, CgroupEntry>();
  #lastWalk = -Infinity;
  #walks = 0;

  /** An index over `options.root`; nothing is read until the first lookup. */
  constructor(options: CgroupIndexOptions = {}) {
    this.root = (options.root ?? cgroup2Root() ?? "/sys/fs/cgroup").replace(/\/+$/, "");
    this.#minRefreshMs = options.minRefreshMs ?? 1000;
  }

  /** The cgroup with this id, walking the tree when it is not known (see the class doc); undefined if none. */
  get(id: number): CgroupEntry | undefined {
    const hit = this.#byId.get(id);
    if (hit !== undefined) return hit;
    if (performance.now() - this.#lastWalk < this.#minRefreshMs) return undefined;
    this.refresh();
    return this.#byId.get(id);
  }

  /** The container of the cgroup with this id (null for a host cgroup or an unknown id). */
  containerOf(id: number): ContainerRef | null {
    return this.get(id)?.container ?? null;
  }

  /** Walk the whole tree now, replacing what is known. */
  refresh(): void {
    const next = new Map<number, CgroupEntry>();
    const visit = (path: string) => {
      let ino: number | null;
      try {
        ino = Deno.statSync(path === "/" ? this.root : this.root + path).ino;
      } catch {
        return; // vanished
      }
      if (ino !== null) next.set(ino, { id: ino, path, container: containerFromCgroupPath(path) });
      let entries: Deno.DirEntry[];
      try {
        entries = [...Deno.readDirSync(path === "/" ? this.root : this.root + path)];
      } catch {
        return;
      }
      for (const e of entries) if (e.isDirectory) visit(path === "/" ? `/${e.name}` : `${path}/${e.name}`);
    };
    visit("/");
    this.#byId = next;
    this.#lastWalk = performance.now();
    this.#walks++;
  }

  /** Cgroups known since the last walk. */
  get size(): number {
    return this.#byId.size;
  }

  /** How many walks were made (for tests and stats). */
  get walks(): number {
    return this.#walks;
  }
}
