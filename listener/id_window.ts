/**
 * The ids of the most recent stored records (and of those being stored), so a retried event is acknowledged
 * without being written twice, and a retry that races its original waits for it instead of writing again.
 *
 * Bounded: two generations of at most capacity/2 ids each; when the young one fills up, the old one is dropped
 * whole, so at least the last capacity/2 ids (and at most capacity) are remembered, with no per-id eviction.
 * Each generation is an open-addressing hash table in typed arrays, keyed by a 30-bit FNV-1a hash of the id,
 * with the id kept to confirm a match: no object and no Map entry per id (a Map of 200,000 entries costs V8
 * several times the memory, and hashing a freshly parsed string for a Map more than this), and nothing for
 * the garbage collector to trace but the id strings.
 * @module
 */

/** What the window knows about one id. */
export interface IdEntry {
  id: string;
  /** Resolves when the record with this id is durable; rejects if its write failed. */
  done: Promise<void>;
}

/** FNV-1a over the UTF-16 code units, folded to a non-negative small integer. */
export function idHash(id: string): number {
  let x = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    x ^= id.charCodeAt(i);
    x = Math.imul(x, 16777619);
  }
  return x >>> 2;
}

/** One generation: up to `capacity` ids in insertion slots, indexed by a linear-probing table of slot + 1. */
class Generation {
  readonly table: Int32Array;
  readonly hashes: Int32Array;
  readonly ids: (string | undefined)[];
  readonly dones: (Promise<void> | undefined)[];
  readonly mask: number;
  count = 0;

  constructor(readonly capacity: number) {
    let size = 8;
    while (size < capacity * 2) size *= 2; // at most half full: short probes
    this.table = new Int32Array(size);
    this.mask = size - 1;
    this.hashes = new Int32Array(capacity);
    this.ids = new Array(capacity).fill(undefined);
    this.dones = new Array(capacity).fill(undefined);
  }

  /** The slot holding `id` (hash `h`), or -1. */
  find(h: number, id: string): number {
    const { table, hashes, ids, mask } = this;
    for (let i = h & mask;; i = (i + 1) & mask) {
      const s = table[i];
      if (s === 0) return -1;
      if (hashes[s - 1] === h && ids[s - 1] === id) return s - 1;
    }
  }

  insert(h: number, id: string, done: Promise<void>): void {
    const slot = this.count++;
    this.hashes[slot] = h;
    this.ids[slot] = id;
    this.dones[slot] = done;
    const { table, mask } = this;
    let i = h & mask;
    while (table[i] !== 0) i = (i + 1) & mask;
    table[i] = slot + 1;
  }

  clear(): void {
    this.table.fill(0);
    this.ids.fill(undefined, 0, this.count);
    this.dones.fill(undefined, 0, this.count);
    this.count = 0;
  }
}

/** A window of recent ids. */
export class IdWindow {
  #young: Generation;
  #old: Generation;

  constructor(readonly capacity: number) {
    const half = Math.max(1, Math.ceil(capacity / 2));
    this.#young = new Generation(half);
    this.#old = new Generation(half);
  }

  /** The entry for `id` if it was added recently. */
  get(id: string): IdEntry | undefined {
    const h = idHash(id);
    let g = this.#young;
    let slot = g.find(h, id);
    if (slot < 0) {
      g = this.#old;
      slot = g.find(h, id);
      if (slot < 0) return undefined;
    }
    return { id, done: g.dones[slot]! };
  }

  /** True when `id` was added recently. */
  has(id: string): boolean {
    return this.get(id) !== undefined;
  }

  /** Remember `id`, stored (or being stored) as `done` tells. */
  add(id: string, done: Promise<void>): void {
    if (this.capacity === 0) return;
    if (this.#young.count >= this.#young.capacity) {
      const dropped = this.#old;
      this.#old = this.#young;
      dropped.clear();
      this.#young = dropped;
    }
    this.#young.insert(idHash(id), id, done);
  }

  /** Forget `id` (its write failed, so a retry must store it). */
  delete(id: string): void {
    const h = idHash(id);
    for (const g of [this.#young, this.#old]) {
      // The slot stays in the probe chain, but no id matches it any more.
      for (let slot = g.find(h, id); slot >= 0; slot = g.find(h, id)) {
        g.ids[slot] = undefined;
        g.dones[slot] = undefined;
      }
    }
  }

  /** How many ids are remembered (approximately, after deletes). */
  get size(): number {
    return this.#young.count + this.#old.count;
  }
}
