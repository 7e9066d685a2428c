/**
 * Reading the log back: the files in order (rotated ones first) and their lines, streamed in chunks so a
 * large file is never held whole. A partial last line (a write still under way) is not yielded.
 * @module
 */
import { basename, dirname, join } from "node:path";

/** The log's files oldest first: `<log>.N` … `<log>.1`, then `<log>` itself; only those that exist. */
export async function logFiles(path: string): Promise<string[]> {
  const name = basename(path);
  const dir = dirname(path);
  const rotated: [number, string][] = [];
  let current = false;
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (!entry.isFile) continue;
      if (entry.name === name) current = true;
      else if (entry.name.startsWith(name + ".")) {
        const rest = entry.name.slice(name.length + 1);
        if (/^\d+$/.test(rest)) rotated.push([Number(rest), join(dir, entry.name)]);
      }
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  rotated.sort((a, b) => b[0] - a[0]);
  const files = rotated.map(([, p]) => p);
  if (current) files.push(path);
  return files;
}

/** The complete lines of one file, in order; a file that vanished (rotated away) yields nothing. */
export async function* readLines(path: string, chunkSize = 1 << 20): AsyncGenerator<string> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw e;
  }
  try {
    const decoder = new TextDecoder();
    const buf = new Uint8Array(chunkSize);
    let carry = "";
    for (;;) {
      const n = await file.read(buf);
      if (n === null) break;
      const text = carry + decoder.decode(buf.subarray(0, n), { stream: true });
      let start = 0;
      for (let nl = text.indexOf("\n"); nl !== -1; nl = text.indexOf("\n", start)) {
        if (nl > start) yield text.slice(start, nl);
        start = nl + 1;
      }
      carry = text.slice(start);
    }
  } finally {
    file.close();
  }
}

/** Every record (parsed line) of the whole log, oldest first; lines that are not JSON objects are skipped. */
export async function* readRecords(
  path: string,
): AsyncGenerator<{ line: string; record: Record<string, unknown> }> {
  for (const file of await logFiles(path)) {
    for await (const line of readLines(file)) {
      if (line.startsWith("#")) continue;
      try {
        const record = JSON.parse(line);
        if (record !== null && typeof record === "object" && !Array.isArray(record)) yield { line, record };
      } catch {
        // not a record; start-up repair keeps such lines out of the log
      }
    }
  }
}
