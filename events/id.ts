/**
 * UUIDv7 ids (RFC 9562): 48-bit Unix milliseconds, then a 12-bit counter and random bits, so ids made by one
 * process sort in the order they were made, and ids from different processes sort by time.
 * @module
 */

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
let lastMs = -1;
let counter = 0;
const bytes = new Uint8Array(16);

/** A new UUIDv7, monotonic within this process even when the clock stands still or steps back. */
export function uuidv7(now: number = Date.now()): string {
  if (now > lastMs) {
    lastMs = now;
    crypto.getRandomValues(bytes);
    counter = ((bytes[6] & 0x0f) << 8) | bytes[7];
    counter &= 0x7ff; // leave room to count up within the millisecond
  } else {
    counter++;
    if (counter > 0xfff) {
      lastMs++; // counter exhausted: borrow the next millisecond (RFC 9562 6.2, method 1)
      counter = 0;
    }
    crypto.getRandomValues(bytes);
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
  let s = "";
  for (let i = 0; i < 16; i++) {
    s += HEX[bytes[i]];
    if (i === 3 || i === 5 || i === 7 || i === 9) s += "-";
  }
  return s;
}

/** The Unix milliseconds a UUIDv7 was made at, or undefined for another kind of id. */
export function uuidv7Time(id: string): number | undefined {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i.test(id)) return undefined;
  return parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}
