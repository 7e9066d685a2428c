/**
 * The spool's record format: one line per record, `<crc32 hex> <event count> <JSON array of events>`, and
 * the scan that reads a spool file back line by line (see spool.ts for the layout).
 * @module
 */
const encoder = new TextEncoder();
const decoder = new TextDecoder();

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE) of `bytes`. */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** One record line for `events` (already serialised as JSON texts). */
export function encodeRecord(jsons: string[]): string {
  const body = `${jsons.length} [${jsons.join(",")}]`;
  return `${crc32(encoder.encode(body)).toString(16).padStart(8, "0")} ${body}\n`;
}

/** The event count of a record line (without its newline), or undefined when it is not a valid record. */
export function checkRecord(line: Uint8Array): number | undefined {
  if (line.length < 13 || line[8] !== 0x20) return undefined;
  const crc = decoder.decode(line.subarray(0, 8));
  if (!/^[0-9a-f]{8}$/.test(crc) || parseInt(crc, 16) !== crc32(line.subarray(9))) return undefined;
  let i = 9;
  let count = 0;
  while (i < line.length && line[i] >= 0x30 && line[i] <= 0x39) count = count * 10 + line[i++] - 0x30;
  if (i === 9 || line[i] !== 0x20 || line[i + 1] !== 0x5b || line[line.length - 1] !== 0x5d) return undefined;
  return count;
}

/** Lines of `file` from `from`: complete ones with their bytes, an unterminated last one as `line: null`. */
export async function* scanLines(
  file: Deno.FsFile,
  from: number,
): AsyncGenerator<{ start: number; end: number; line: Uint8Array | null }> {
  await file.seek(from, Deno.SeekMode.Start);
  const chunk = new Uint8Array(1 << 20);
  let buf = new Uint8Array(0);
  let pos = from;
  for (;;) {
    const n = await file.read(chunk);
    if (n === null) break;
    const next = new Uint8Array(buf.length + n);
    next.set(buf);
    next.set(chunk.subarray(0, n), buf.length);
    buf = next;
    let s = 0;
    let i: number;
    while ((i = buf.indexOf(10, s)) !== -1) {
      yield { start: pos + s, end: pos + i + 1, line: buf.subarray(s, i) };
      s = i + 1;
    }
    buf = buf.slice(s);
    pos += s;
  }
  if (buf.length > 0) yield { start: pos, end: pos + buf.length, line: null };
}
