/**
 * RingReader, pure: a simulated BPF ring buffer in ArrayBuffers laid out as the kernel maps it (consumer page,
 * producer page, data area twice the ring's size whose halves mirror each other, as the kernel's double mapping
 * of the same pages), written by a simulated producer that follows the kernel's protocol (kernel/bpf/ringbuf.c):
 * an 8-byte header (u32 length with BUSY bit 31 while written and DISCARD bit 30, u32 page offset) reserved in
 * order, data padded to 8 bytes, the producer position advanced at reservation and the BUSY bit cleared at
 * commit.
 */
import assert from "node:assert/strict";
import { RingReader } from "./ring.ts";

const BUSY = 0x80000000;
const DISCARD = 0x40000000;
const HEADER = 8;

/** The kernel's side of one ring: reserve, commit, discard; and the consumer page as the kernel reads it. */
class FakeRing {
  readonly consumer = new ArrayBuffer(4096);
  readonly producer = new ArrayBuffer(4096);
  readonly data: ArrayBuffer;
  readonly #bytes: Uint8Array;
  readonly #dv: DataView;

  /** A ring of `size` bytes whose consumer and producer both start at `start` (8-aligned). */
  constructor(readonly size: number, start = 0) {
    this.data = new ArrayBuffer(2 * size);
    this.#bytes = new Uint8Array(this.data);
    this.#dv = new DataView(this.data);
    this.#bytes.fill(0xee); // what a page held before: never read as a record
    new BigUint64Array(this.consumer)[0] = BigInt(start);
    new BigUint64Array(this.producer)[0] = BigInt(start);
  }

  get consumerPos(): number {
    return Number(new BigUint64Array(this.consumer)[0]);
  }

  get producerPos(): number {
    return Number(new BigUint64Array(this.producer)[0]);
  }

  /** Write a byte at ring position `pos` in both halves (the double mapping shows the same page twice). */
  #put(pos: number, byte: number): void {
    const at = pos % this.size;
    this.#bytes[at] = byte;
    this.#bytes[at + this.size] = byte;
  }

  #putU32(pos: number, v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, true);
    b.forEach((x, i) => this.#put(pos + i, x));
  }

  /**
   * Reserve a record of `len` bytes and write `payload` into it; it stays BUSY until committed. Returns its
   * position. Throws, as bpf_ringbuf_reserve fails, when the ring has no room for it.
   */
  reserve(payload: Uint8Array): number {
    const pos = this.producerPos;
    const total = (payload.length + HEADER + 7) & ~7;
    if (pos + total - this.consumerPos > this.size) throw new Error("ring full");
    this.#putU32(pos, payload.length | BUSY);
    this.#putU32(pos + 4, 0); // pg_off: the reader does not need it
    payload.forEach((x, i) => this.#put(pos + HEADER + i, x));
    // Padding bytes hold junk, as in the kernel (they are never handed over).
    for (let i = HEADER + payload.length; i < total; i++) this.#put(pos + i, 0xcc);
    new BigUint64Array(this.producer)[0] = BigInt(pos + total);
    return pos;
  }

  commit(pos: number): void {
    const len = this.#dv.getUint32(pos % this.size, true) & ~(BUSY | DISCARD);
    this.#putU32(pos, len);
  }

  discard(pos: number): void {
    const len = this.#dv.getUint32(pos % this.size, true) & ~(BUSY | DISCARD);
    this.#putU32(pos, len | DISCARD);
  }

  /** Reserve and commit. */
  write(payload: Uint8Array): number {
    const pos = this.reserve(payload);
    this.commit(pos);
    return pos;
  }

  reader(): RingReader {
    return new RingReader({ consumer: this.consumer, producer: this.producer, data: this.data });
  }
}

/** A payload of `n` bytes, each `tag + i`, so that records and their bytes tell apart. */
const payload = (tag: number, n: number) => Uint8Array.from({ length: n }, (_, i) => (tag + i) & 0xff);

/** Everything `read` hands over, copied (as onRecord must), with its offset. */
function readAll(reader: RingReader, max = 1000): { n: number; records: number[][]; offsets: number[] } {
  const records: number[][] = [];
  const offsets: number[] = [];
  const n = reader.read(max, (view, offset, length) => {
    records.push(Array.from(new Uint8Array(view.buffer, view.byteOffset + offset, length)));
    offsets.push(offset);
  });
  return { n, records, offsets };
}

const arr = (p: Uint8Array) => Array.from(p);

Deno.test("ring: records are read in order, lengths without the header, data 8-aligned apart", () => {
  const ring = new FakeRing(512);
  const sent = [payload(1, 64), payload(100, 5), payload(150, 13), payload(200, 8), payload(7, 1)];
  for (const p of sent) ring.write(p);
  const reader = ring.reader();
  assert.equal(reader.pending(), 72 + 16 + 24 + 16 + 16);
  const got = readAll(reader);
  assert.equal(got.n, 5);
  assert.deepEqual(got.records, sent.map(arr));
  assert.deepEqual(got.offsets, [8, 80, 96, 120, 136], "each record's data follows its header, padded to 8");
  assert.equal(ring.consumerPos, 144, "the consumer position is past the last record, its padding included");
  assert.equal(reader.pending(), 0);
  assert.deepEqual(readAll(reader), { n: 0, records: [], offsets: [] }, "nothing more");
});

Deno.test("ring: reading stops at a record still being written (BUSY), and resumes once it is committed", () => {
  const ring = new FakeRing(512);
  ring.write(payload(1, 64));
  const busy = ring.reserve(payload(2, 64));
  ring.write(payload(3, 64)); // written after, committed first: it must wait for the busy one
  const reader = ring.reader();
  const first = readAll(reader);
  assert.equal(first.n, 1);
  assert.deepEqual(first.records, [arr(payload(1, 64))]);
  assert.equal(ring.consumerPos, 72, "the consumer stops at the busy record");
  assert.equal(reader.pending(), 144, "the busy record and the one after it are pending");
  assert.equal(readAll(reader).n, 0, "still busy: nothing");
  assert.equal(ring.consumerPos, 72);
  ring.commit(busy);
  const rest = readAll(reader);
  assert.deepEqual(rest.records, [arr(payload(2, 64)), arr(payload(3, 64))]);
  assert.equal(ring.consumerPos, 216);
});

Deno.test("ring: a discarded record is skipped, not handed over, and its space is consumed", () => {
  const ring = new FakeRing(512);
  ring.write(payload(1, 16));
  ring.discard(ring.reserve(payload(2, 40)));
  ring.write(payload(3, 16));
  const reader = ring.reader();
  const got = readAll(reader);
  assert.equal(got.n, 2, "only the records handed over are counted");
  assert.deepEqual(got.records, [arr(payload(1, 16)), arr(payload(3, 16))]);
  assert.equal(ring.consumerPos, 24 + 48 + 24);
  assert.equal(reader.pending(), 0);
});

Deno.test("ring: at most `max` records a read; the next read goes on where it stopped", () => {
  const ring = new FakeRing(1024);
  for (let i = 0; i < 5; i++) ring.write(payload(10 * i, 64));
  const reader = ring.reader();
  const a = readAll(reader, 2);
  assert.equal(a.n, 2);
  assert.deepEqual(a.records, [arr(payload(0, 64)), arr(payload(10, 64))]);
  assert.equal(ring.consumerPos, 144, "only the records read are consumed");
  assert.equal(reader.pending(), 3 * 72);
  assert.equal(readAll(reader, 0).n, 0, "max 0 reads nothing");
  assert.equal(ring.consumerPos, 144);
  const b = readAll(reader, 10);
  assert.deepEqual(b.records, [20, 30, 40].map((t) => arr(payload(t, 64))));
  assert.equal(ring.consumerPos, 5 * 72);
});

Deno.test("ring: a discarded record does not count towards `max`", () => {
  const ring = new FakeRing(512);
  ring.discard(ring.reserve(payload(1, 8)));
  ring.discard(ring.reserve(payload(2, 8)));
  ring.write(payload(3, 8));
  ring.write(payload(4, 8));
  const got = readAll(ring.reader(), 1);
  assert.deepEqual(got.records, [arr(payload(3, 8))]);
  assert.equal(ring.consumerPos, 48, "past the two discarded records and the one read, not the fourth");
});

Deno.test("ring: the consumer position is published once the read returns, not while records are handed over", () => {
  const ring = new FakeRing(512);
  for (let i = 0; i < 3; i++) ring.write(payload(i, 32));
  const reader = ring.reader();
  const seen: number[] = [];
  const n = reader.read(10, () => seen.push(ring.consumerPos));
  assert.equal(n, 3);
  assert.deepEqual(seen, [0, 0, 0], "the producer may not reuse a record's bytes while it is being read");
  assert.equal(ring.consumerPos, 3 * 40);
  // A read that finds nothing leaves the consumer position as it was (no store).
  new BigUint64Array(ring.consumer)[0] = 999n; // a store here would overwrite this
  assert.equal(reader.read(10, () => assert.fail("no record")), 0);
  assert.equal(ring.consumerPos, 999);
});

Deno.test("ring: the reader starts at the consumer position it finds", () => {
  const ring = new FakeRing(256, 4096 + 40);
  ring.write(payload(1, 24));
  const reader = ring.reader();
  assert.equal(reader.pending(), 32);
  const got = readAll(reader);
  assert.deepEqual(got.records, [arr(payload(1, 24))]);
  assert.deepEqual(got.offsets, [40 + 8]);
  assert.equal(ring.consumerPos, 4096 + 72);
});

Deno.test("ring: a record that wraps around the end of the ring reads as one piece (the second mapping)", () => {
  const size = 256;
  // Third lap, 24 bytes before the end: the header fits, the data runs 48 bytes past the end.
  const ring = new FakeRing(size, 3 * size - 24);
  const wrapping = payload(40, 64);
  ring.write(wrapping);
  ring.write(payload(200, 16)); // after the wrap: at the start of the ring again
  const reader = ring.reader();
  const got = readAll(reader);
  assert.equal(got.n, 2);
  assert.deepEqual(got.records, [arr(wrapping), arr(payload(200, 16))]);
  assert.deepEqual(
    got.offsets,
    [size - 16, 48 + 8],
    "the wrapping record's data starts 16 bytes before the end",
  );
  assert.equal(ring.consumerPos, 3 * size + 48 + 24);

  // Round and round: many laps of records of varied sizes, read a few at a time when the ring has no room.
  const expected: number[][] = [];
  const read: number[][] = [];
  let laps = 0;
  for (let i = 0; i < 300; i++) {
    const p = payload(i, 1 + ((i * 37) % 90));
    const total = (p.length + HEADER + 7) & ~7;
    while (ring.producerPos + total - ring.consumerPos > size) {
      const got = readAll(reader, 1 + (i % 3));
      assert.ok(got.n > 0, "a full ring has records to read");
      read.push(...got.records);
    }
    const before = ring.producerPos % size;
    ring.write(p);
    if (ring.producerPos % size < before || before + HEADER + p.length > size) laps++;
    expected.push(arr(p));
  }
  read.push(...readAll(reader).records);
  assert.deepEqual(read, expected);
  assert.equal(reader.pending(), 0);
  assert.ok(laps > 20, `the records went round the ring many times (${laps})`);
});

Deno.test("ring: positions past 2^32 bytes still map to the right offset", () => {
  const size = 4096;
  const start = 2 ** 33 - 8; // a header 8 bytes before the end, its data wrapping
  const ring = new FakeRing(size, start);
  ring.write(payload(9, 64));
  ring.write(payload(77, 64));
  const reader = ring.reader();
  const got = readAll(reader);
  assert.deepEqual(got.records, [arr(payload(9, 64)), arr(payload(77, 64))]);
  assert.deepEqual(got.offsets, [size, 72 - 8 + 8]);
  assert.equal(ring.consumerPos, start + 144);
});

Deno.test("ring: pending() is what the producer wrote past the consumer, busy records included", () => {
  const ring = new FakeRing(512);
  const reader = ring.reader();
  assert.equal(reader.pending(), 0);
  ring.write(payload(1, 64));
  assert.equal(reader.pending(), 72);
  const busy = ring.reserve(payload(2, 3));
  assert.equal(reader.pending(), 72 + 16);
  readAll(reader);
  assert.equal(reader.pending(), 16, "the busy record is still pending");
  ring.commit(busy);
  readAll(reader);
  assert.equal(reader.pending(), 0);
  // A record written while a read is under way is read in the same read (the producer is read again).
  ring.write(payload(3, 8));
  const order: number[] = [];
  const n = reader.read(10, (view, offset) => {
    order.push(view.getUint8(offset));
    if (order.length === 1) ring.write(payload(4, 8));
  });
  assert.equal(n, 2);
  assert.deepEqual(order, [3, 4]);
});

Deno.test("ring: a data area that is not twice a power of two is refused", () => {
  for (const bytes of [0, 8, 2 * 100, 2 * 4095]) {
    assert.throws(
      () =>
        new RingReader({
          consumer: new ArrayBuffer(8),
          producer: new ArrayBuffer(8),
          data: new ArrayBuffer(bytes),
        }),
      RangeError,
      `${bytes} bytes`,
    );
  }
  assert.ok(
    new RingReader({ consumer: new ArrayBuffer(8), producer: new ArrayBuffer(8), data: new ArrayBuffer(16) }),
  );
});
