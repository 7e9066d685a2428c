/**
 * The ledger's short memory of recent forks and ends, for events read out of order (bpftrace reads its per-CPU
 * buffers in turn): an open read after a newer fork of its process still goes to the child, and an open read
 * after a newer end of its socket or process is not a live socket. Bounded by time (kernel clock) and count.
 * @module
 */

/** How long (kernel ns) forks and ends are remembered for events that arrive after newer ones. */
export const RECENT_NS = 5_000_000_000;
/** At most this many of each are remembered. */
export const RECENT_MAX = 4096;

/** Most forks remembered per parent. */
const PER_PARENT = 64;

/** Recent forks by parent pid: (child, kts). */
export class RecentForks {
  #forks = new Map<number, { child: number; kts: number }[]>();
  #count = 0;

  /** Forks remembered (all parents). */
  get size(): number {
    return this.#count;
  }

  /** The forks of `parent` remembered (oldest first). */
  of(parent: number): readonly { child: number; kts: number }[] {
    return this.#forks.get(parent) ?? [];
  }

  /** Remember that `parent` forked `child` at kernel time `kts`; forgets the oldest past the bounds. */
  remember(parent: number, child: number, kts: number): void {
    let list = this.#forks.get(parent);
    if (!list) this.#forks.set(parent, list = []);
    list.push({ child, kts });
    this.#count++;
    if (this.#count <= RECENT_MAX && list.length <= PER_PARENT) return;
    for (const [p, l] of this.#forks) {
      const kept = l.filter((f) => f.kts > kts - RECENT_NS).slice(-PER_PARENT);
      this.#count -= l.length - kept.length;
      if (kept.length === 0) this.#forks.delete(p);
      else this.#forks.set(p, kept);
    }
    while (this.#count > RECENT_MAX) {
      const [p, l] = this.#forks.entries().next().value!;
      this.#forks.delete(p);
      this.#count -= l.length;
    }
  }
}

/**
 * Recent ends by key (kts): `ino:N`/`sk:X` for a socket end that found no socket, `pid:N` for an exit, `exec:N`
 * for an exec. An open older than such an end, read after it, is judged by it.
 */
export class RecentEnds {
  #ends = new Map<string, number>();

  /** Ends remembered. */
  get size(): number {
    return this.#ends.size;
  }

  /** When `key` last ended (kts), if remembered. */
  get(key: string): number | undefined {
    return this.#ends.get(key);
  }

  /** Remember that `key` ended at `kts` (nothing without both); forgets the oldest past the bounds. */
  remember(key: string | undefined, kts: number | undefined): void {
    if (key === undefined || kts === undefined) return;
    this.#ends.delete(key);
    this.#ends.set(key, kts);
    if (this.#ends.size <= RECENT_MAX) return;
    for (const [k, t] of this.#ends) {
      if (this.#ends.size <= RECENT_MAX / 2 && t > kts - RECENT_NS) break;
      this.#ends.delete(k);
    }
  }
}
