/**
 * Start-up repair of the log: a crash in the middle of a write can leave a torn last line (or, after a power
 * loss, a tail of NUL bytes). That tail is moved to `<log>.corrupt` and cut off, so the log stays valid JSON
 * lines; nothing acknowledged is in it, since acknowledgement waits for the whole write.
 * @module
 */
import { syncDir } from "./log_writer.ts";
import { dirname } from "node:path";

/** What start-up repair found. */
export interface RecoveryReport {
  /** Bytes moved from the end of the log to the .corrupt file (0 when the log was clean). */
  movedBytes: number;
  /** Where they went. */
  corruptPath?: string;
}

const TAIL = 4 * 1024 * 1024;

/** True when a complete line is a JSON object. */
function isGoodLine(bytes: Uint8Array): boolean {
  try {
    const v = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    return v !== null && typeof v === "object" && !Array.isArray(v);
  } catch {
    return false;
  }
}

/** Offset just past the last good line in `tail` (which starts at file offset `base`). */
export function goodEnd(tail: Uint8Array, base: number, atFileStart: boolean): number {
  let end = tail.lastIndexOf(0x0a) + 1; // past the last newline; the rest is a torn line
  // Complete lines at the very end that are not JSON (zeros after a power loss) are torn too.
  while (end > 0) {
    const prevNl = tail.lastIndexOf(0x0a, end - 2);
    if (prevNl === -1 && !atFileStart) break; // the line starts before the tail we read: leave it
    const line = tail.subarray(prevNl + 1, end - 1);
    if (line.length > 0 && isGoodLine(line)) break;
    if (line.length === 0 && prevNl === -1) break;
    end = prevNl + 1;
  }
  return base + end;
}

/** Repair `path` in place if its end is torn; a missing file is fine. */
export async function recoverLog(path: string): Promise<RecoveryReport> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true, write: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { movedBytes: 0 };
    throw e;
  }
  try {
    const { size } = await file.stat();
    if (size === 0) return { movedBytes: 0 };
    const base = Math.max(0, size - TAIL);
    const tail = new Uint8Array(size - base);
    await file.seek(base, Deno.SeekMode.Start);
    let off = 0;
    while (off < tail.length) {
      const n = await file.read(tail.subarray(off));
      if (n === null) break;
      off += n;
    }
    const end = goodEnd(tail.subarray(0, off), base, base === 0);
    if (end >= size) return { movedBytes: 0 };
    const corruptPath = `${path}.corrupt`;
    const moved = tail.subarray(end - base, off);
    const out = await Deno.open(corruptPath, { append: true, create: true });
    try {
      const header = new TextEncoder().encode(
        `# ${new Date().toISOString()} ${moved.length} bytes cut from the end of ${path} at offset ${end}\n`,
      );
      await out.write(header);
      let w = 0;
      while (w < moved.length) w += await out.write(moved.subarray(w));
      await out.write(new Uint8Array([0x0a]));
      await out.sync();
    } finally {
      out.close();
    }
    await file.truncate(end);
    await file.sync();
    await syncDir(dirname(path));
    return { movedBytes: moved.length, corruptPath };
  } finally {
    file.close();
  }
}
