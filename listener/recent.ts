/**
 * The newest stored records, in log order, in memory: they answer most queries and let a stream client that
 * reconnects resume from its last id without reading the files.
 *
 * Held as their lines' UTF-8 bytes in one buffer outside the JavaScript heap, with two offsets per record:
 * nothing for the garbage collector to trace or to promote (kept as strings, each line and the request body it
 * was cut from would live through many collections and be copied into the old generation). An entry's line
 * and record are decoded and parsed when first read.
 * @module
 */

/** A stored record with its line as written. */
export interface Entry {
  /** Position in this process's view of the log (1, 2, …); not persisted. */
  readonly seq: number;
  readonly id: string;
  /** The record, parsed from `line` on first use. */
  readonly record: Record<string, unknown>;
  readonly line: string;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** An entry read back from the buffer: decodes its line and parses its record on first use. */
class LazyEntry implements Entry {
  #line?: string;
  #record?: Record<string, unknown>;
  constructor(readonly seq: number, readonly bytes: Uint8Array) {}

  get line(): string {
    return this.#line ??= decoder.decode(this.bytes);
  }

  get record(): Record<string, unknown> {
    return this.#record ??= JSON.parse(this.line);
  }

  get id(): string {
    return String(this.record.id);
  }
}

/** Ring of the last `capacity` records' lines. */
export class RecentLog {
  /**
   * Where each held line starts, in bytes since the first line ever pushed (so a compaction moves no offset),
   * and its length, in a ring of `capacity` slots.
   */
  #starts: Float64Array;
  #lengths: Int32Array;
  #head = 0; // slot of the oldest entry
  #count = 0;
  #seq = 0;
  /** The lines, oldest first, from #starts[#head] to #end; compacted to the front when the end is reached. */
  #buf = new Uint8Array(64 * 1024);
  /** The position (as in #starts) of #buf[0], and of the end of the last line. */
  #base = 0;
  #end = 0;

  constructor(readonly capacity: number) {
    this.#starts = new Float64Array(capacity);
    this.#lengths = new Int32Array(capacity);
  }

  /** Append one line (without its "\n"), in log order; returns its seq. */
  push(line: string): number {
    return this.pushLines(line + "\n", 1);
  }

  /**
   * Append `n` lines given as one text, each ending in "\n" (as written to the log), in log order; returns the
   * seq of the first.
   */
  pushLines(text: string, n: number): number {
    return this.pushBytes(encoder.encode(text), n);
  }

  /**
   * Append `n` lines given as their UTF-8 bytes, each ending in "\n" (as written to the log), in log order;
   * returns the seq of the first. The bytes are copied. `lengths`, the lines' lengths in bytes when known,
   * spares a search for each line end.
   */
  pushBytes(bytes: Uint8Array, n: number, lengths?: Int32Array): number {
    const first = this.#seq + 1;
    this.#seq += n;
    if (this.capacity === 0) return first;
    const at = this.#room(bytes.length);
    this.#buf.set(bytes, at);
    const buf = this.#buf;
    const stop = at + bytes.length;
    const base = this.#base;
    if (lengths) {
      let start = at;
      for (let i = 0; i < n; i++) {
        this.#add(base + start, lengths[i]);
        start += lengths[i] + 1;
      }
      this.#end = base + stop;
      return first;
    }
    for (let start = at; start < stop;) {
      let nl = buf.indexOf(10, start);
      if (nl === -1 || nl >= stop) nl = stop; // a last line without its "\n"
      this.#add(base + start, nl - start);
      start = nl + 1;
    }
    this.#end = base + stop;
    return first;
  }

  #add(start: number, length: number): void {
    let slot: number;
    if (this.#count === this.capacity) {
      slot = this.#head;
      this.#head = (this.#head + 1) % this.capacity;
    } else {
      slot = (this.#head + this.#count) % this.capacity;
      this.#count++;
    }
    this.#starts[slot] = start;
    this.#lengths[slot] = length;
  }

  /**
   * The index in #buf where `bytes` more can be written after the held lines: compacts, or grows, the buffer
   * first if needed.
   */
  #room(bytes: number): number {
    const end = this.#end - this.#base;
    if (end + bytes <= this.#buf.length) return end;
    const from = (this.#count > 0 ? this.#starts[this.#head] : this.#end) - this.#base;
    const live = end - from;
    // Keep the buffer half as large again as what is live: a compaction (a copy of what is live) every time
    // half as much again has been added.
    const want = Math.ceil(1.5 * (live + bytes));
    // Growing transfers the bytes to the larger buffer and frees the old one at once: a copy left behind would
    // stay in memory until a full collection (an ArrayBuffer that lived this long is in the old generation),
    // and while the buffer grows under a burst those copies add up to twice its final size.
    if (this.#buf.length < want) this.#buf = new Uint8Array(this.#buf.buffer.transfer(want));
    this.#buf.copyWithin(0, from, end);
    this.#base += from;
    return live;
  }

  #entry(i: number): Entry {
    const slot = (this.#head + i) % this.capacity;
    const start = this.#starts[slot] - this.#base;
    return new LazyEntry(
      this.#seq - this.#count + 1 + i,
      this.#buf.slice(start, start + this.#lengths[slot]),
    );
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
    const out: Entry[] = [];
    for (let i = this.#count - 1; i >= 0; i--) {
      const e = this.#entry(i);
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
