/**
 * The append-only JSON-lines log, written with group commit: every append that arrives while a write or fsync
 * is under way joins the next batch, so many requests share one write() and one fsync(). An append's promise
 * resolves only once its bytes are written (and, with fsync on, on disk), in the order appends were made.
 * Size rotation happens between batches, so a batch never straddles two files and no line is lost.
 * @module
 */
import { basename, dirname } from "node:path";
import { setImmediate } from "node:timers";

/** How the log is written. */
export interface LogWriterOptions {
  /** Path of the current log file, e.g. ./logs/portwatcher.log. */
  path: string;
  /** fsync (fdatasync) before acknowledging. */
  fsync: boolean;
  /** Rotate when the file would grow past this many bytes; 0 never rotates. */
  maxBytes: number;
  /** How many rotated files to keep (path.1 is the newest). */
  keep: number;
}

interface Pending {
  /** Whole lines, as bytes or as text (encoded into the batch buffer, no copy of its own). */
  data: Uint8Array | string;
  onDurable?: (bytes: Uint8Array) => void;
  /** Where its bytes are in the batch buffer, once encoded. */
  end?: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** Counters a caller may report. */
export interface LogWriterStats {
  batches: number;
  appends: number;
  bytes: number;
  rotations: number;
  fsyncs: number;
}

const encoder = new TextEncoder();
/** The batch buffer starts this large and, when a burst made it grow past BUFFER_KEEP, is let go after it. */
const BUFFER_START = 256 * 1024;
const BUFFER_KEEP = 4 * 1024 * 1024;
/** Appends at least this large are written at once when fsync is off and the writer is idle. */
const DIRECT_MIN = 8 * 1024;
const DONE = Promise.resolve();
const EMPTY = new Uint8Array(0);

/** Group-commit writer for one log file. */
export class LogWriter {
  #file: Deno.FsFile;
  /** Every batch is encoded into this one buffer, reused: no buffer per request or per batch. */
  #buf = new Uint8Array(BUFFER_START);
  #size: number;
  #queue: Pending[] = [];
  #draining = false;
  #closed = false;
  readonly stats: LogWriterStats = { batches: 0, appends: 0, bytes: 0, rotations: 0, fsyncs: 0 };
  /** Called with the seconds each fsync (fdatasync) took (metrics). */
  onSync?: (seconds: number) => void;

  private constructor(readonly options: LogWriterOptions, file: Deno.FsFile, size: number) {
    this.#file = file;
    this.#size = size;
  }

  /** Open (creating it and its folder if needed) the log for appending. */
  static async open(options: LogWriterOptions): Promise<LogWriter> {
    await Deno.mkdir(dirname(options.path), { recursive: true });
    const file = await Deno.open(options.path, { append: true, create: true });
    const { size } = await file.stat();
    return new LogWriter(options, file, size);
  }

  /** Current size of the log file in bytes. */
  get size(): number {
    return this.#size;
  }

  /**
   * Append whole lines (each ending in "\n"), as bytes or as text (written as UTF-8). `onDurable` runs
   * synchronously once they are written (and synced), before the promise resolves, in append order: the place
   * to publish what was stored. It is given the appended bytes as written: a view into the writer's buffer,
   * valid only during the call.
   */
  append(data: Uint8Array | string, onDurable?: (bytes: Uint8Array) => void): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("the log is closed"));
    if (
      !this.options.fsync && !this.#draining && this.#queue.length === 0 && data.length >= DIRECT_MIN
    ) {
      const direct = this.#writeNow(data, onDurable);
      if (direct) return direct;
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ data, onDurable, resolve, reject });
      if (!this.#draining) this.#drain();
    });
  }

  /**
   * True when `total` more bytes would take the log past LOG_MAX_BYTES. The size kept in memory is checked
   * against the file first, so a log cleared by hand (`> portwatcher.log`, the seed's way) is not rotated early.
   */
  #mustRotate(total: number): boolean {
    const full = () =>
      this.options.maxBytes > 0 && this.#size > 0 && this.#size + total > this.options.maxBytes;
    if (!full()) return false;
    try {
      this.#size = this.#file.statSync().size;
    } catch { /* keep the count: rotating is the safe side */ }
    return full();
  }

  /**
   * Without fsync, a large append (an NDJSON batch) that finds the writer idle is written at once: waiting
   * for others to join would save little (one write() per large request is cheap) and would keep every parsed
   * request in memory meanwhile. Undefined when the file must rotate first (the queued path does that).
   */
  #writeNow(data: Uint8Array | string, onDurable?: (bytes: Uint8Array) => void): Promise<void> | undefined {
    const total = this.#encodeOne(data, 0);
    if (this.#mustRotate(total)) return undefined;
    const base = this.#size;
    try {
      writeAllSync(this.#file, this.#buf.subarray(0, total));
      this.#size += total;
    } catch (error) {
      try {
        this.#file.truncateSync(base);
        this.#size = base;
      } catch { /* the error below is what matters */ }
      return Promise.reject(error);
    }
    this.stats.batches++;
    this.stats.appends++;
    this.stats.bytes += total;
    try {
      onDurable?.(this.#buf.subarray(0, total));
    } finally {
      if (this.#buf.length > BUFFER_KEEP) this.#buf = new Uint8Array(BUFFER_START);
    }
    return DONE;
  }

  /** Room for `more` bytes after the first `used` of the batch buffer. */
  #reserve(used: number, more: number): Uint8Array {
    if (used + more <= this.#buf.length) return this.#buf;
    let size = this.#buf.length * 2;
    while (size < used + more) size *= 2;
    const bigger = new Uint8Array(size);
    bigger.set(this.#buf.subarray(0, used));
    return this.#buf = bigger;
  }

  /** Encode one append's data into the batch buffer after its first `used` bytes; the new end. */
  #encodeOne(data: Uint8Array | string, used: number): number {
    if (typeof data !== "string") {
      this.#reserve(used, data.length).set(data, used);
      return used + data.length;
    }
    // At least one byte per UTF-16 unit; encodeInto stops short (never inside a character) when it runs out of
    // room, and the rest goes into a bigger buffer.
    let rest = data;
    for (;;) {
      const buf = this.#reserve(used, rest.length);
      const { read, written } = encoder.encodeInto(rest, buf.subarray(used));
      used += written;
      if (read === rest.length) return used;
      rest = rest.slice(read);
      this.#reserve(used, rest.length * 3);
    }
  }

  async #drain(): Promise<void> {
    this.#draining = true;
    // Let the requests already read by the server in this turn of the event loop join the first batch.
    // (setImmediate, not setTimeout(0), which waits about 2 ms in Deno.)
    await new Promise((resolve) => setImmediate(resolve));
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue;
        this.#queue = [];
        let total = 0;
        for (const p of batch) {
          total = p.end = this.#encodeOne(p.data, total);
          p.data = EMPTY; // the text is not needed any more: let it go before the fsync
        }
        const buf = this.#buf.subarray(0, total);
        let base = this.#size;
        try {
          if (this.#mustRotate(total)) {
            await this.#rotate();
            base = this.#size;
          }
          // A write to the page cache takes microseconds: done in place, it costs less than a trip through
          // the thread pool. The fsync, which takes milliseconds, runs off the event loop while the next
          // batch gathers (group commit).
          writeAllSync(this.#file, buf);
          this.#size += total;
          if (this.options.fsync) {
            const t0 = performance.now();
            await this.#file.syncData();
            this.onSync?.((performance.now() - t0) / 1000);
            this.stats.fsyncs++;
          }
        } catch (error) {
          // Nothing of this batch is acknowledged: cut off whatever part of it reached the file.
          try {
            this.#file.truncateSync(base);
            this.#size = base;
          } catch { /* the file is gone or read-only; the error below is what matters */ }
          for (const p of batch) p.reject(error);
          continue;
        }
        this.stats.batches++;
        this.stats.appends += batch.length;
        this.stats.bytes += total;
        let start = 0;
        for (const p of batch) {
          try {
            p.onDurable?.(this.#buf.subarray(start, p.end));
          } finally {
            start = p.end!;
            p.resolve();
          }
        }
        if (this.#buf.length > BUFFER_KEEP) this.#buf = new Uint8Array(BUFFER_START);
      }
    } finally {
      this.#draining = false;
    }
  }

  async #rotate(): Promise<void> {
    const { path, keep } = this.options;
    this.#file.close();
    // The rotated files there are, found in one listing: renaming each possible name in turn cost LOG_KEEP
    // renames per rotation (1,000 of them held every request for about 100 ms).
    const dir = dirname(path);
    const name = new RegExp(`^${escapeRe(basename(path))}\\.([1-9]\\d*)$`); // path.1, path.2, ... as named here
    const rotated: number[] = [];
    for await (const entry of Deno.readDir(dir)) {
      const m = name.exec(entry.name);
      if (m) rotated.push(Number(m[1]));
    }
    rotated.sort((a, b) => b - a);
    for (const i of rotated) {
      // Files at or beyond `keep` (the oldest, or left by an earlier, larger LOG_KEEP) are removed. One that
      // went away since the listing (removed by hand) is no reason to fail the write.
      await (i >= keep ? Deno.remove(`${path}.${i}`) : Deno.rename(`${path}.${i}`, `${path}.${i + 1}`)).catch(
        (e) => {
          if (!(e instanceof Deno.errors.NotFound)) throw e;
        },
      );
    }
    await Deno.rename(path, `${path}.1`);
    this.#file = await Deno.open(path, { append: true, create: true });
    this.#size = 0;
    await syncDir(dir);
    this.stats.rotations++;
  }

  /** Wait for every pending append, then close the file. */
  async close(): Promise<void> {
    this.#closed = true;
    while (this.#draining || this.#queue.length > 0) await new Promise((r) => setTimeout(r, 1));
    this.#file.close();
  }
}

function writeAllSync(file: Deno.FsFile, buf: Uint8Array): void {
  let off = 0;
  while (off < buf.length) off += file.writeSync(off === 0 ? buf : buf.subarray(off));
}

/** fsync a directory, so a rename or a new file in it survives a crash. */
export async function syncDir(dir: string): Promise<void> {
  const d = await Deno.open(dir, { read: true });
  try {
    await d.sync();
  } finally {
    d.close();
  }
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
