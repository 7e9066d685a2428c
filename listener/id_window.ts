/**
 * The ids of the most recent stored records (and of those being stored), so a retried event is acknowledged
 * without being written twice, and a retry that races its original waits for it instead of writing again.
 *
 * Bounded: two generations of at most capacity/2 ids each; when the young one fills up, the old one is dropped
 * whole, so at least the last capacity/2 ids (and at most capacity) are remembered, with no per-id eviction.
 * Each generation is an open-addressing hash table in typed arrays, keyed by a 30-bit hash of the id, with the
 * id kept to confirm a match: a canonical lowercase UUID (what watchers and the listener make) as 16 bytes, any
 * other id as its string. No object, string or Map entry per UUID: a Map of 200,000 entries costs V8 several
 * times the memory, and every id string kept would be copied into the old generation and traced by each
 * collection.
 * @module
 */

/** What a settled write's ids report as `done`. */
const SETTLED: Promise<void> = Promise.resolve();

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

/** Lowercase hex digit values by UTF-16 code unit, -1 for every other one. */
const HEX = new Int8Array(65536).fill(-1);
for (let c = 0; c < 10; c++) HEX[48 + c] = c;
for (let c = 0; c < 6; c++) HEX[97 + c] = 10 + c;

/**
 * A canonical (lowercase) UUID, as 4 words in `out`, for 16 bytes instead of a string; false for any other
 * id (kept as a string). Two ids are equal exactly when both parse to the same words or both are equal strings.
 */
function uuidWords(id: string, out: Int32Array): boolean {
  if (
    id.length !== 36 || id.charCodeAt(8) !== 45 || id.charCodeAt(13) !== 45 || id.charCodeAt(18) !== 45 ||
    id.charCodeAt(23) !== 45
  ) return false;
  // HEX[c] is the value of hex digit c, -1 for any other code (a negative value ORed in marks a bad id).
  let bad = 0;
  let w = 0;
  for (let i = 0; i < 8; i++) {
    const v = HEX[id.charCodeAt(i)];
    bad |= v;
    w = (w << 4) | v;
  }
  out[0] = w;
  w = 0;
  for (let i = 9; i < 18; i++) {
    if (i === 13) continue;
    const v = HEX[id.charCodeAt(i)];
    bad |= v;
    w = (w << 4) | v;
  }
  out[1] = w;
  w = 0;
  for (let i = 19; i < 28; i++) {
    if (i === 23) continue;
    const v = HEX[id.charCodeAt(i)];
    bad |= v;
    w = (w << 4) | v;
  }
  out[2] = w;
  w = 0;
  for (let i = 28; i < 36; i++) {
    const v = HEX[id.charCodeAt(i)];
    bad |= v;
    w = (w << 4) | v;
  }
  out[3] = w;
  return bad >= 0;
}

/** A 30-bit hash of UUID words. */
function wordsHash(wd: Int32Array): number {
  let x = Math.imul(wd[0] ^ 0x9e3779b9, 0x85ebca6b);
  x = Math.imul(x ^ wd[1] ^ (x >>> 15), 0xc2b2ae35);
  x = Math.imul(x ^ wd[2] ^ (x >>> 13), 0x85ebca6b);
  x = Math.imul(x ^ wd[3] ^ (x >>> 16), 0xc2b2ae35);
  return (x ^ (x >>> 15)) >>> 2;
}

const KIND_NONE = 0; // empty or deleted: matches nothing
const KIND_UUID = 1;
const KIND_STRING = 2;

/**
 * One generation: up to `capacity` ids in insertion slots (UUIDs as words, others as strings), indexed by a
 * linear-probing table of slot + 1.
 */
class Generation {
  readonly table: Int32Array;
  readonly hashes: Int32Array;
  readonly kinds: Uint8Array;
  readonly words: Int32Array;
  readonly strings: (string | undefined)[] = [];
  /** The write each id belongs to (see IdWindow's #pending); 0 for none. */
  readonly tags: Int32Array;
  readonly mask: number;
  count = 0;

  constructor(readonly capacity: number) {
    let size = 8;
    while (size < capacity * 2) size *= 2; // at most half full: short probes
    this.table = new Int32Array(size);
    this.mask = size - 1;
    this.hashes = new Int32Array(capacity);
    this.kinds = new Uint8Array(capacity);
    this.words = new Int32Array(capacity * 4);
    this.tags = new Int32Array(capacity);
  }

  /** The slot holding the id described by (`h`, `uuid` words in `wd`, else `id`), or -1. */
  find(h: number, uuid: boolean, wd: Int32Array, id: string): number {
    const { table, hashes, kinds, words, mask } = this;
    for (let i = h & mask;; i = (i + 1) & mask) {
      const s = table[i];
      if (s === 0) return -1;
      const slot = s - 1;
      if (hashes[slot] !== h) continue;
      if (uuid) {
        const o = slot * 4;
        if (
          kinds[slot] === KIND_UUID && words[o] === wd[0] && words[o + 1] === wd[1] &&
          words[o + 2] === wd[2] &&
          words[o + 3] === wd[3]
        ) return slot;
      } else if (kinds[slot] === KIND_STRING && this.strings[slot] === id) return slot;
    }
  }

  insert(h: number, uuid: boolean, wd: Int32Array, id: string, tag: number): void {
    const slot = this.count++;
    this.hashes[slot] = h;
    if (uuid) {
      this.kinds[slot] = KIND_UUID;
      const o = slot * 4;
      this.words[o] = wd[0];
      this.words[o + 1] = wd[1];
      this.words[o + 2] = wd[2];
      this.words[o + 3] = wd[3];
    } else {
      this.kinds[slot] = KIND_STRING;
      this.strings[slot] = id;
    }
    this.tags[slot] = tag;
    const { table, mask } = this;
    let i = h & mask;
    while (table[i] !== 0) i = (i + 1) & mask;
    table[i] = slot + 1;
  }

  clear(): void {
    this.table.fill(0);
    this.kinds.fill(KIND_NONE, 0, this.count);
    this.strings.length = 0;

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

  /** Words of the id being looked up or added (one buffer, reused). */
  #wd = new Int32Array(4);

  /** The hash of `id`, its words left in #wd when it is a UUID. */
  #key(id: string): { h: number; uuid: boolean } {
    const uuid = uuidWords(id, this.#wd);
    return { h: uuid ? wordsHash(this.#wd) : idHash(id), uuid };
  }

  /** The entry for `id` if it was added recently. */
  get(id: string): IdEntry | undefined {
    const { h, uuid } = this.#key(id);
    let g = this.#young;
    let slot = g.find(h, uuid, this.#wd, id);
    if (slot < 0) {
      g = this.#old;
      slot = g.find(h, uuid, this.#wd, id);
      if (slot < 0) return undefined;
    }
    return { id, done: this.#pending.get(g.tags[slot]) ?? SETTLED };
  }

  /** True when `id` was added recently. */
  has(id: string): boolean {
    return this.get(id) !== undefined;
  }

  /**
   * The writes not yet settled, by tag. Each id records the tag of its write (a number in a typed array), not
   * the write's promise: no pointer per id for the garbage collector. Once a write settles its tag is dropped
   * and its ids report {@link SETTLED} (a failed write's ids are deleted before its promise rejects).
   */
  #pending = new Map<number, Promise<void>>();
  #lastDone?: Promise<void>;
  #lastTag = 0;

  #tagOf(done: Promise<void>): number {
    if (done === this.#lastDone) return this.#lastTag;
    // Tags wrap after 2^31 writes; by then the tag's old ids have long left the window or settled.
    const tag = this.#lastTag >= 0x7fffffff ? 1 : this.#lastTag + 1;
    this.#lastDone = done;
    this.#lastTag = tag;
    this.#pending.set(tag, done);
    const settle = () => {
      this.#pending.delete(tag);
    };
    done.then(settle, settle);
    return tag;
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
    const tag = this.#tagOf(done);
    const { h, uuid } = this.#key(id);
    this.#young.insert(h, uuid, this.#wd, id, tag);
  }

  /** Forget `id` (its write failed, so a retry must store it). */
  delete(id: string): void {
    const { h, uuid } = this.#key(id);
    for (const g of [this.#young, this.#old]) {
      // The slot stays in the probe chain, but no id matches it any more.
      for (let slot = g.find(h, uuid, this.#wd, id); slot >= 0; slot = g.find(h, uuid, this.#wd, id)) {
        g.kinds[slot] = KIND_NONE;
        g.strings[slot] = undefined;
        g.tags[slot] = 0;
      }
    }
  }

  /** How many ids are remembered (approximately, after deletes). */
  get size(): number {
    return this.#young.count + this.#old.count;
  }
}
