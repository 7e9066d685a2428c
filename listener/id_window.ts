/**
 * The ids of the most recent stored records (and of those being stored), so a retried event is acknowledged
 * without being written twice, and a retry that races its original waits for it instead of writing again.
 *
 * Bounded: two generations of at most capacity/2 ids each; when the young one fills up, the old one is dropped
 * whole, so at least the last capacity/2 ids (and at most capacity) are remembered, with no per-id eviction.
 * Keys are a 30-bit FNV-1a hash of the id (a small integer key), with the id itself kept to confirm a match:
 * hashing a freshly parsed string for a Set or Map costs V8 several times more than this.
 * @module
 */

/** What the window knows about one id. */
export interface IdEntry {
  id: string;
  /** Resolves when the record with this id is durable; rejects if its write failed. */
  done: Promise<void>;
}

type Slot = IdEntry | IdEntry[];

/** FNV-1a over the UTF-16 code units, folded to a non-negative small integer. */
export function idHash(id: string): number {
  let x = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    x ^= id.charCodeAt(i);
    x = Math.imul(x, 16777619);
  }
  return x >>> 2;
}

function find(map: Map<number, Slot>, h: number, id: string): IdEntry | undefined {
  const slot = map.get(h);
  if (slot === undefined) return undefined;
  if (!Array.isArray(slot)) return slot.id === id ? slot : undefined;
  return slot.find((e) => e.id === id);
}

/** A window of recent ids. */
export class IdWindow {
  #young = new Map<number, Slot>();
  #old = new Map<number, Slot>();
  #youngCount = 0;
  #oldCount = 0;
  readonly #half: number;

  constructor(readonly capacity: number) {
    this.#half = Math.max(1, Math.ceil(capacity / 2));
  }

  /** The entry for `id` if it was added recently. */
  get(id: string): IdEntry | undefined {
    const h = idHash(id);
    return find(this.#young, h, id) ?? find(this.#old, h, id);
  }

  /** True when `id` was added recently. */
  has(id: string): boolean {
    return this.get(id) !== undefined;
  }

  /** Remember `id`, stored (or being stored) as `done` tells. */
  add(id: string, done: Promise<void>): void {
    if (this.capacity === 0) return;
    if (this.#youngCount >= this.#half) {
      this.#old = this.#young;
      this.#oldCount = this.#youngCount;
      this.#young = new Map();
      this.#youngCount = 0;
    }
    const h = idHash(id);
    const entry: IdEntry = { id, done };
    const slot = this.#young.get(h);
    if (slot === undefined) this.#young.set(h, entry);
    else if (Array.isArray(slot)) slot.push(entry);
    else this.#young.set(h, [slot, entry]);
    this.#youngCount++;
  }

  /** Forget `id` (its write failed, so a retry must store it). */
  delete(id: string): void {
    const h = idHash(id);
    for (const map of [this.#young, this.#old]) {
      const slot = map.get(h);
      if (slot === undefined) continue;
      if (!Array.isArray(slot)) {
        if (slot.id === id) map.delete(h);
      } else {
        const rest = slot.filter((e) => e.id !== id);
        if (rest.length === 0) map.delete(h);
        else map.set(h, rest.length === 1 ? rest[0] : rest);
      }
    }
  }

  /** How many ids are remembered (approximately, after deletes). */
  get size(): number {
    return this.#youngCount + this.#oldCount;
  }
}
