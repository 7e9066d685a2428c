/**
 * UUIDv7 ids (RFC 9562): 48-bit Unix milliseconds, then a 12-bit counter and random bits, so ids made by one
 * process sort in the order they were made, and ids from different processes sort by time.
 * @module
 */

const HEX_CHARS = new TextEncoder().encode("0123456789abcdef");
const chars = new Uint16Array(36);
let lastMs = -1;
let counter = 0;
const bytes = new Uint8Array(16);
// Random bytes are drawn 4 KiB at a time: one getRandomValues call per id costs more than the rest of the id.
const pool = new Uint8Array(4096);
let poolAt = pool.length;

function fillRandom(): void {
  if (poolAt + 16 > pool.length) {
    crypto.getRandomValues(pool);
    poolAt = 0;
  }
  bytes.set(pool.subarray(poolAt, poolAt + 16));
  poolAt += 16;
}

/** A new UUIDv7, monotonic within this process even when the clock stands still or steps back. */
export function uuidv7(now: number = Date.now()): string {
  if (now > lastMs) {
    lastMs = now;
    fillRandom();
    counter = ((bytes[6] & 0x0f) << 8) | bytes[7];
    counter &= 0x7ff; // leave room to count up within the millisecond
  } else {
    counter++;
    if (counter > 0xfff) {
      lastMs++; // counter exhausted: borrow the next millisecond (RFC 9562 6.2, method 1)
      counter = 0;
    }
    fillRandom();
  }
  const ms = lastMs;
  bytes[0] = Math.floor(ms / 2 ** 40) & 0xff;
  bytes[1] = Math.floor(ms / 2 ** 32) & 0xff;
  bytes[2] = (ms >>> 24) & 0xff;
  bytes[3] = (ms >>> 16) & 0xff;
  bytes[4] = (ms >>> 8) & 0xff;
  bytes[5] = ms & 0xff;
  bytes[6] = 0x70 | ((counter >>> 8) & 0x0f);
  bytes[7] = counter & 0xff;
  bytes[8] = 0x80 | (bytes[8] & 0x3f);
  // One flat string from a char-code buffer: built by concatenation it would be a rope, which every Set or
  // Map lookup must first flatten.
  let c = 0;
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) chars[c++] = 0x2d; // "-"
    chars[c++] = HEX_CHARS[bytes[i] >> 4];
    chars[c++] = HEX_CHARS[bytes[i] & 15];
  }
  return String.fromCharCode.apply(null, chars as unknown as number[]);
}

/** The Unix milliseconds a UUIDv7 was made at, or undefined for another kind of id. */
export function uuidv7Time(id: string): number | undefined {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i.test(id)) return undefined;
  return parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}
