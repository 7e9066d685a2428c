/**
 * Runtime-owned sockets: sockets that live in a container's network namespace but that no process of it holds.
 * Docker's embedded DNS is the common one: dockerd (in the host's network namespace, outside the container's
 * cgroup) opens a TCP and a UDP socket on 127.0.0.11, random ports, inside every container of a user-defined
 * network, from a thread that enters the container's namespace for that moment. Reported as the container's own
 * ports they are two ports nobody in it opened, new at each restart.
 *
 * The rule: a socket is runtime-owned when it has holders and every one of them lives in another network
 * namespace than the socket (a process's namespace is its main thread's, /proc/<pid>/ns/net). A socket whose
 * holders are unknown (another pid namespace, a process that exited) is not: nothing says whose it is. Every
 * engine applies it through {@link RuntimeSocketFilter}: polling to its scans, eBPF engines to their ledger's
 * observations; REPORT_RUNTIME_SOCKETS=1 turns it off.
 * @module
 */

/**
 * The rule on its own: true when `holderNetns` is not empty and every holder's namespace is known and differs
 * from the socket's.
 * @example
 * ```ts
 * isRuntimeOwned(4026532300, [4026531840]); // true: dockerd, in the host's namespace, holds it
 * isRuntimeOwned(4026532300, [4026532300, 4026531840]); // false: a process of the container holds it too
 * isRuntimeOwned(4026532300, []); // false: holders unknown
 * ```
 */
export function isRuntimeOwned(socketNetns: number, holderNetns: readonly (number | undefined)[]): boolean {
  return holderNetns.length > 0 && holderNetns.every((n) => n !== undefined && n !== socketNetns);
}

/** Options of {@link RuntimeSocketFilter}. */
export interface RuntimeSocketFilterOptions {
  /** Report runtime-owned sockets anyway (REPORT_RUNTIME_SOCKETS=1): the filter then keeps everything. */
  report?: boolean;
  /** The /proc to read holders' namespaces from (default "/proc"). */
  proc?: string;
  /** How long a pid's namespace is believed (default 1000 ms). */
  ttlMs?: number;
}

/**
 * The rule applied with holders' namespaces read from /proc/<pid>/ns/net (kept `ttlMs`). Shared by the polling
 * engine and the event-driven engines, so that both hide the same sockets.
 */
export class RuntimeSocketFilter {
  /** True when runtime-owned sockets are reported (nothing is hidden). */
  readonly report: boolean;
  /** Sockets hidden so far (counted at each look: a socket seen at each scan counts each time). */
  hidden = 0;
  readonly #proc: string;
  readonly #ttlMs: number;
  readonly #netns = new Map<number, { ino: number | undefined; at: number }>();

  /** A filter; see {@link RuntimeSocketFilterOptions}. */
  constructor(options: RuntimeSocketFilterOptions = {}) {
    this.report = options.report ?? false;
    this.#proc = options.proc ?? "/proc";
    this.#ttlMs = options.ttlMs ?? 1000;
  }

  /** The network namespace inode of `pid`, or undefined when it is gone or may not be read. */
  netnsOf(pid: number, now = Date.now()): number | undefined {
    const hit = this.#netns.get(pid);
    if (hit && now - hit.at < this.#ttlMs) return hit.ino;
    let ino: number | undefined;
    try {
      ino = Deno.statSync(`${this.#proc}/${pid}/ns/net`).ino ?? undefined;
    } catch {
      ino = undefined;
    }
    if (this.#netns.size > 8192) this.#netns.clear();
    this.#netns.set(pid, { ino, at: now });
    return ino;
  }

  /** True when a socket of namespace `netns` held by `pids` is to be hidden (runtime-owned, not reported). */
  hides(netns: number, pids: Iterable<number>): boolean {
    if (this.report) return false;
    const now = Date.now();
    const holders: (number | undefined)[] = [];
    for (const pid of pids) holders.push(this.netnsOf(pid, now));
    const hide = isRuntimeOwned(netns, holders);
    if (hide) this.hidden++;
    return hide;
  }

  /** The sockets of namespace `netns` that are not hidden; `pidsOf` gives each one's holders. */
  keep<T extends { inode: number }>(
    netns: number,
    sockets: readonly T[],
    pidsOf: (inode: number) => readonly number[] | undefined,
  ): T[] {
    if (this.report) return sockets as T[];
    // one scan's sockets share few holders: each pid's namespace is looked at once per call
    const now = Date.now();
    const elsewhere = new Map<number, boolean>();
    const isElsewhere = (pid: number) => {
      let e = elsewhere.get(pid);
      if (e === undefined) {
        const ino = this.netnsOf(pid, now);
        e = ino !== undefined && ino !== netns;
        elsewhere.set(pid, e);
      }
      return e;
    };
    const kept: T[] = [];
    for (const s of sockets) {
      const pids = pidsOf(s.inode);
      // the rule of isRuntimeOwned: holders known, every one in another namespace
      if (pids !== undefined && pids.length > 0 && pids.every(isElsewhere)) this.hidden++;
      else kept.push(s);
    }
    return kept;
  }
}
