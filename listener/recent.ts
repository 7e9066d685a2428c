/**
 * The newest stored records, in log order, in memory: they answer most queries and let a stream client that
 * reconnects resume from its last id without reading the files.
 *
 * Only each record's id and line are held (about a third of the memory of a parsed record, and nothing for the
 * garbage collector to trace); an entry's record is parsed from its line when it is first read.
 * @module
 */

/** A stored record with its line as written. */
export interface Entry {
  /** Position in this process's view of the log (1, 2, …); not persisted. */
  seq: number;
  id: string;
  /** The record, parsed from `line` on first use. */
  readonly record: Record<string, unknown>;
  line: string;
}

/** An entry read back from the ring: parses its line on first use of `record`. */
class LazyEntry implements Entry {
  #record?: Record<string, unknown>;
  constructor(readonly seq: number, readonly id: string, readonly line: string) {}

  get record(): Record<string, unknown> {
    return this.#record ??= JSON.parse(this.line);
  }
}

/** Ring buffer of the last `capacity` records (ids and lines). */
export class RecentLog {
  #ids: string[];
  #lines: string[];
  #head = 0; // index of the oldest entry
  #count = 0;
  #seq = 0;

  constructor(readonly capacity: number) {
    this.#ids = new Array(capacity).fill("");
    this.#lines = new Array(capacity).fill("");
  }

  /** Append a record (in log order) by its id and line; returns its seq. */
  push(id: string, line: string): number {
    const seq = ++this.#seq;
    if (this.capacity === 0) return seq;
    let at: number;
    if (this.#count === this.capacity) {
      at = this.#head;
      this.#head = (this.#head + 1) % this.capacity;
    } else {
      at = (this.#head + this.#count) % this.capacity;
      this.#count++;
    }
    this.#ids[at] = id;
    this.#lines[at] = line;
    return seq;
  }

  #entry(i: number): Entry {
    const at = (this.#head + i) % this.capacity;
    return new LazyEntry(this.#seq - this.#count + 1 + i, this.#ids[at], this.#lines[at]);
  }

  /** Entries oldest first. */
  *entries(): IterableIterator<Entry> {
    for (let i = 0; i < this.#count; i++) yield this.#entry(i);
  }

  /** Entries newest first. */
  *newestFirst(): IterableIterator<Entry> {
    for (let i = this.#count - 1; i >= 0; i--) yield this.#entry(i);
  }

  /**
   * The entries after the one with `id`, or undefined when `id` is not held here. A linear search from the
   * newest: resuming is rare and usually close to the end, so no per-entry index is kept for it.
   */
  after(id: string): Entry[] | undefined {
    for (let i = this.#count - 1; i >= 0; i--) {
      if (this.#ids[(this.#head + i) % this.capacity] !== id) continue;
      const out: Entry[] = [];
      for (let j = i + 1; j < this.#count; j++) out.push(this.#entry(j));
      return out;
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
