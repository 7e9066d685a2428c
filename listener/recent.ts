/**
 * The newest stored records, in log order, in memory: they answer most queries and let a stream client that
 * reconnects resume from its last id without reading the files.
 * @module
 */

/** A stored record with its line as written. */
export interface Entry {
  /** Position in this process's view of the log (1, 2, …); not persisted. */
  seq: number;
  id: string;
  record: Record<string, unknown>;
  line: string;
}

/** Ring buffer of the last `capacity` entries. */
export class RecentLog {
  #ring: (Entry | undefined)[];
  #head = 0; // index of the oldest entry
  #count = 0;
  #seq = 0;

  constructor(readonly capacity: number) {
    this.#ring = new Array(capacity);
  }

  /** Append a record (in log order) and return its entry. */
  push(id: string, record: Record<string, unknown>, line: string): Entry {
    const entry: Entry = { seq: ++this.#seq, id, record, line };
    if (this.capacity === 0) return entry;
    if (this.#count === this.capacity) {
      this.#ring[this.#head] = entry;
      this.#head = (this.#head + 1) % this.capacity;
    } else {
      this.#ring[(this.#head + this.#count) % this.capacity] = entry;
      this.#count++;
    }
    return entry;
  }

  /** Entries oldest first. */
  *entries(): IterableIterator<Entry> {
    for (let i = 0; i < this.#count; i++) yield this.#ring[(this.#head + i) % this.capacity]!;
  }

  /** Entries newest first. */
  *newestFirst(): IterableIterator<Entry> {
    for (let i = this.#count - 1; i >= 0; i--) yield this.#ring[(this.#head + i) % this.capacity]!;
  }

  /**
   * The entries after the one with `id`, or undefined when `id` is not held here. A linear search from the
   * newest: resuming is rare and usually close to the end, so no per-entry index is kept for it.
   */
  after(id: string): Entry[] | undefined {
    const out: Entry[] = [];
    for (const e of this.newestFirst()) {
      if (e.id === id) return out.reverse();
      out.push(e);
    }
    return undefined;
  }

  /** Number of entries held. */
  get size(): number {
    return this.#count;
  }

  /** Total entries ever pushed. */
  get total(): number {
    return this.#seq;
  }
}
