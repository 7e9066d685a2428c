/**
 * Reading a BPF ring buffer (BPF_MAP_TYPE_RINGBUF) straight from its mmap'ed pages, as libbpf's
 * ring_buffer__consume does, without a callback or an FFI call per record: the consumer position (its own page,
 * read-write), the producer position (read-only page) and the data area (mapped twice in a row, so a record that
 * wraps around the end reads as one piece). Positions and headers are read with Atomics (acquire), and the
 * consumer position is published with Atomics (release) once a record is used.
 *
 * A record is an 8-byte header (length with a BUSY bit while the producer writes it and a DISCARD bit for a
 * record given up, then the page offset) followed by the data, padded to 8 bytes. Reading stops at a BUSY record:
 * records are written in reservation order, and one still being written holds back those after it.
 * @module
 */

const BUSY = 0x80000000;
const DISCARD = 0x40000000;
const HEADER = 8;

/** What a ring reader reads: the three mapped areas (see libbpf_source.ts). */
export interface RingAreas {
  /** The consumer page: its first 8 bytes are the consumer position. */
  consumer: ArrayBuffer;
  /** The producer page: its first 8 bytes are the producer position. */
  producer: ArrayBuffer;
  /** The data area, twice the ring's size (the same pages mapped twice). */
  data: ArrayBuffer;
}

/** A consumer of one ring buffer. */
export class RingReader {
  readonly #consumer: BigUint64Array;
  readonly #producer: BigUint64Array;
  readonly #headers: Int32Array;
  readonly view: DataView;
  readonly #mask: number;
  /** The consumer position, as a double (exact up to 2^53 bytes read). */
  #pos: number;

  constructor(areas: RingAreas) {
    const size = areas.data.byteLength / 2;
    if (size < 8 || (size & (size - 1)) !== 0) throw new RangeError(`ring data area of ${size} bytes`);
    this.#consumer = new BigUint64Array(areas.consumer, 0, 1);
    this.#producer = new BigUint64Array(areas.producer, 0, 1);
    this.#headers = new Int32Array(areas.data);
    this.view = new DataView(areas.data);
    this.#mask = size - 1;
    this.#pos = Number(Atomics.load(this.#consumer, 0));
  }

  /** Bytes written and not yet read (records being written included). */
  pending(): number {
    return Number(Atomics.load(this.#producer, 0)) - this.#pos;
  }

  /**
   * Hand at most `max` records to `onRecord(view, offset, length)` (offset of the record's data in `view`), in
   * ring order; returns how many were handed. The consumer position advances past the records read when
   * `read` returns: their bytes may be overwritten after that, so `onRecord` must copy what it keeps.
   */
  read(max: number, onRecord: (view: DataView, offset: number, length: number) => void): number {
    let n = 0;
    const start = this.#pos;
    let prod = Number(Atomics.load(this.#producer, 0));
    while (n < max) {
      if (this.#pos >= prod) {
        prod = Number(Atomics.load(this.#producer, 0));
        if (this.#pos >= prod) break;
      }
      const at = this.#pos & this.#mask; // below 2^31: ring sizes are at most 1 GiB here
      const len = Atomics.load(this.#headers, at >>> 2) >>> 0;
      if (len & BUSY) break;
      const size = len & ~(BUSY | DISCARD);
      if (!(len & DISCARD)) {
        onRecord(this.view, at + HEADER, size);
        n++;
      }
      this.#pos += (size + HEADER + 7) & ~7;
    }
    // Published once for the whole read (a chunk is handed over synchronously): the space is free from now.
    if (this.#pos !== start) Atomics.store(this.#consumer, 0, BigInt(this.#pos));
    return n;
  }
}
