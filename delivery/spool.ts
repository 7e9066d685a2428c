/**
 * A durable on-disk FIFO of event batches, so events survive a listener outage and a watcher restart.
 *
 * Layout of the spool directory (one watcher process per directory):
 * - `spool-<gen>.ndjson`: records, one per line: `<crc32 hex> <event count> <JSON array of events>`; appended
 *   and fsynced before {@link Spool.append} resolves. A batch larger than the record limits is split into
 *   several records, written with one write and one fsync.
 * - `offset.json`: `{"gen":g,"offset":n}`, the bytes of `spool-<g>.ndjson` already delivered; replaced
 *   atomically (temp file, fsync, rename, directory fsync) by {@link Spool.ack}.
 * - `spool-<gen>.corrupt`: a torn tail (a crash mid-append, or garbage after the last good record) found at
 *   open, moved aside and cut off, so the spool always opens; nothing is deleted.
 * - `dead-letter.ndjson`: events the listener refused (see {@link Spool.deadLetter}); one
 *   `{"dead_lettered_at","status","error","event"}` line per event, never read back by portwatch.
 *
 * Compaction copies the pending suffix to `spool-<gen+1>.ndjson` and then switches `offset.json` to it; a
 * crash in between leaves the old generation authoritative (the unfinished new file is removed at open).
 * It runs when the spool is fully drained, when the acknowledged prefix is at least `compactMinBytes` and as
 * large as what is pending, or when an append would otherwise exceed `maxBytes`.
 *
 * Size policy: the data file never grows past `maxBytes`. An append that does not fit is refused with a
 * {@link SpoolFullError} (nothing is written, nothing older is dropped); the caller must report it loudly.
 * @module
 */
import type { PortEvent } from "../events/schema.ts";
import { checkRecord, encodeRecord, scanLines } from "./spool_record.ts";

/** How a spool is kept. */
export interface SpoolOptions {
  /** The spool directory; created if missing. */
  dir: string;
  /** Largest size of the data file in bytes (default 256 MiB). */
  maxBytes?: number;
  /** Most events per record (default 500); a read returns whole records. */
  recordMaxEvents?: number;
  /** Most bytes of event JSON per record (default 512 KiB; a larger single event gets its own record). */
  recordMaxBytes?: number;
  /** Compact once at least this many acknowledged bytes precede the pending ones (default 8 MiB). */
  compactMinBytes?: number;
  /** fsync appends, acknowledgements and dead letters (default true; tests may turn it off). */
  fsync?: boolean;
}

/** What opening the spool repaired. */
export interface SpoolRecovery {
  /** Bytes of a torn tail moved aside (0 when the spool was clean). */
  movedBytes: number;
  /** Where they went. */
  corruptPath?: string;
  /** Leftover files of an interrupted compaction, removed. */
  removed: string[];
}

/** The oldest pending records, as read by {@link Spool.read}. */
export interface SpoolRead<T = PortEvent> {
  /** Their events (items), oldest first. */
  events: T[];
  /** Each record's event count and the offset just past it (what to {@link Spool.ack}). */
  records: { count: number; end: number }[];
  /** Offset just past the last record read. */
  end: number;
}

/** An append that would grow the spool past its limit; nothing was written. */
export class SpoolFullError extends Error {
  /** The spool directory, the bytes refused, the bytes held, and the limit. */
  constructor(
    readonly dir: string,
    readonly needBytes: number,
    readonly usedBytes: number,
    readonly maxBytes: number,
  ) {
    super(
      `spool ${dir} is full: it holds ${usedBytes} of ${maxBytes} bytes (SPOOL_MAX_BYTES) and ${needBytes} ` +
        `more were refused; the listener has been unreachable for long: these events are NOT stored`,
    );
    this.name = "SpoolFullError";
  }
}

/** Default largest spool: 256 MiB. */
export const DEFAULT_SPOOL_MAX_BYTES = 256 * 1024 * 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await file.write(bytes.subarray(off));
}

async function fsyncDir(dir: string): Promise<void> {
  try {
    using d = await Deno.open(dir, { read: true });
    await d.sync();
  } catch {
    // some filesystems cannot fsync a directory; the rename is still atomic
  }
}

type Rec = { start: number; end: number; count: number };

/**
 * The durable FIFO; every method is serialised internally, so callers may overlap them. Its items are port
 * events by default; any JSON-serialisable type works (the listener's alert queues keep alerts in one).
 */
export class Spool<T = PortEvent> {
  #file!: Deno.FsFile;
  #gen = 0;
  #offset = 0;
  #size = 0;
  #recs: Rec[] = [];
  #head = 0;
  #events = 0;
  #chain: Promise<unknown> = Promise.resolve();
  #closed = false;
  /** Largest data file size. */
  readonly maxBytes: number;
  /** Most events per record. */
  readonly recordMaxEvents: number;
  /** Most event bytes per record. */
  readonly recordMaxBytes: number;
  /** Acknowledged bytes that justify a compaction. */
  readonly compactMinBytes: number;
  /** Whether writes are fsynced. */
  readonly fsync: boolean;
  /** What opening repaired. */
  recovery: SpoolRecovery = { movedBytes: 0, removed: [] };

  private constructor(readonly dir: string, options: SpoolOptions) {
    this.maxBytes = options.maxBytes ?? DEFAULT_SPOOL_MAX_BYTES;
    this.recordMaxEvents = options.recordMaxEvents ?? 500;
    this.recordMaxBytes = options.recordMaxBytes ?? 512 * 1024;
    this.compactMinBytes = options.compactMinBytes ?? 8 * 1024 * 1024;
    this.fsync = options.fsync ?? true;
  }

  /** Open (or create) the spool in `options.dir`, repairing a torn tail and an interrupted compaction. */
  static async open<T = PortEvent>(options: SpoolOptions): Promise<Spool<T>> {
    const spool = new Spool<T>(options.dir, options);
    await Deno.mkdir(options.dir, { recursive: true });
    await spool.#load();
    return spool;
  }

  /** Path of the dead-letter file. */
  get deadLetterPath(): string {
    return `${this.dir}/dead-letter.ndjson`;
  }
  /** Events appended and not yet acknowledged. */
  get pendingEvents(): number {
    return this.#events;
  }
  /** Records not yet acknowledged. */
  get pendingRecords(): number {
    return this.#recs.length - this.#head;
  }
  /** Bytes not yet acknowledged. */
  get pendingBytes(): number {
    return this.#size - this.#offset;
  }
  /** Size of the data file (acknowledged prefix included), what `maxBytes` bounds. */
  get fileBytes(): number {
    return this.#size;
  }

  #path(gen: number): string {
    return `${this.dir}/spool-${gen}.ndjson`;
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(() => {
      if (this.#closed) throw new Error(`spool ${this.dir} is closed`);
      return fn();
    });
    this.#chain = run.catch(() => {});
    return run;
  }

  async #load(): Promise<void> {
    const gens: number[] = [];
    for await (const e of Deno.readDir(this.dir)) {
      const m = /^spool-(\d+)\.ndjson$/.exec(e.name);
      if (m && e.isFile) gens.push(Number(m[1]));
    }
    let state: { gen: number; offset: number } | undefined;
    try {
      const v = JSON.parse(await Deno.readTextFile(`${this.dir}/offset.json`));
      if (Number.isSafeInteger(v?.gen) && Number.isSafeInteger(v?.offset) && v.gen >= 0 && v.offset >= 0) {
        state = v;
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) {
        // unreadable: start over from the oldest data file; redelivery is harmless (ids dedupe)
        await Deno.rename(`${this.dir}/offset.json`, `${this.dir}/offset.json.corrupt`).catch(() => {});
      }
    }
    state ??= { gen: gens.length > 0 ? Math.min(...gens) : 0, offset: 0 };
    this.#gen = state.gen;
    for (const g of gens) {
      if (g !== this.#gen) {
        await Deno.remove(this.#path(g));
        this.recovery.removed.push(this.#path(g));
      }
    }
    this.#file = await Deno.open(this.#path(this.#gen), { read: true, append: true, create: true });
    const size = (await this.#file.stat()).size;
    this.#offset = state.offset <= size ? state.offset : 0; // truncated behind our back: resend it all
    let good = this.#offset;
    let torn = false;
    for await (const { start, end, line } of scanLines(this.#file, this.#offset)) {
      const count = line === null ? undefined : checkRecord(line);
      if (count === undefined) {
        torn = true;
        break;
      }
      this.#recs.push({ start, end, count });
      this.#events += count;
      good = end;
    }
    if (torn) {
      const corruptPath = `${this.dir}/spool-${this.#gen}.corrupt`;
      {
        using src = await Deno.open(this.#path(this.#gen), { read: true });
        using dst = await Deno.open(corruptPath, { append: true, create: true });
        await src.seek(good, Deno.SeekMode.Start);
        await src.readable.pipeTo(dst.writable, { preventClose: true });
        await dst.sync();
      }
      await this.#file.truncate(good);
      await this.#file.sync();
      this.recovery.movedBytes = size - good;
      this.recovery.corruptPath = corruptPath;
    }
    this.#size = good;
    if (state.offset !== this.#offset) await this.#writeOffset();
  }

  async #writeOffset(): Promise<void> {
    const tmp = `${this.dir}/offset.json.tmp`;
    {
      using f = await Deno.open(tmp, { write: true, create: true, truncate: true });
      await writeAll(f, encoder.encode(JSON.stringify({ gen: this.#gen, offset: this.#offset }) + "\n"));
      if (this.fsync) await f.sync();
    }
    await Deno.rename(tmp, `${this.dir}/offset.json`);
    if (this.fsync) await fsyncDir(this.dir);
  }

  /** Durably append `events` (resolves after fsync); throws {@link SpoolFullError} when they do not fit. */
  append(events: T[]): Promise<void> {
    if (events.length === 0) return Promise.resolve();
    let text = "";
    const recs: { bytes: number; count: number }[] = [];
    let group: string[] = [];
    let groupBytes = 0;
    const flushGroup = () => {
      if (group.length === 0) return;
      const line = encodeRecord(group);
      recs.push({ bytes: encoder.encode(line).length, count: group.length });
      text += line;
      group = [];
      groupBytes = 0;
    };
    for (const e of events) {
      const json = JSON.stringify(e);
      const bytes = encoder.encode(json).length + 1;
      if (
        group.length >= this.recordMaxEvents || (group.length > 0 && groupBytes + bytes > this.recordMaxBytes)
      ) {
        flushGroup();
      }
      group.push(json);
      groupBytes += bytes;
    }
    flushGroup();
    const data = encoder.encode(text);
    return this.#serial(async () => {
      if (this.#size + data.length > this.maxBytes && this.#offset > 0) await this.#compact();
      if (this.#size + data.length > this.maxBytes) {
        throw new SpoolFullError(this.dir, data.length, this.#size, this.maxBytes);
      }
      const before = this.#size;
      try {
        await writeAll(this.#file, data);
        if (this.fsync) await this.#file.sync();
      } catch (e) {
        await this.#file.truncate(before).catch(() => {}); // never leave a half record behind
        throw e;
      }
      let pos = before;
      for (const r of recs) {
        this.#recs.push({ start: pos, end: pos + r.bytes, count: r.count });
        pos += r.bytes;
        this.#events += r.count;
      }
      this.#size = pos;
    });
  }

  /**
   * The oldest pending records, as many as fit in `maxEvents` events and `maxBytes` bytes (always at least
   * one record when any is pending); undefined when nothing is pending. Does not acknowledge them.
   */
  read(
    maxEvents: number = this.recordMaxEvents,
    maxBytes: number = this.recordMaxBytes,
  ): Promise<SpoolRead<T> | undefined> {
    return this.#serial(async () => {
      if (this.#head >= this.#recs.length) return undefined;
      const picked: Rec[] = [];
      let events = 0;
      for (let i = this.#head; i < this.#recs.length; i++) {
        const r = this.#recs[i];
        if (picked.length > 0 && (events + r.count > maxEvents || r.end - picked[0].start > maxBytes)) break;
        picked.push(r);
        events += r.count;
      }
      const first = picked[0].start;
      const last = picked[picked.length - 1].end;
      const buf = new Uint8Array(last - first);
      using f = await Deno.open(this.#path(this.#gen), { read: true });
      await f.seek(first, Deno.SeekMode.Start);
      let off = 0;
      while (off < buf.length) {
        const n = await f.read(buf.subarray(off));
        if (n === null) throw new Error(`spool file ${this.#path(this.#gen)} is shorter than expected`);
        off += n;
      }
      const out: T[] = [];
      for (const r of picked) {
        const line = decoder.decode(buf.subarray(r.start - first, r.end - first - 1));
        const json = line.slice(line.indexOf(" ", 9) + 1);
        for (const e of JSON.parse(json) as T[]) out.push(e);
      }
      return { events: out, records: picked.map((r) => ({ count: r.count, end: r.end })), end: last };
    });
  }

  /** Durably mark everything before `end` (a record boundary from {@link read}) as delivered; may compact. */
  ack(end: number): Promise<void> {
    return this.#serial(async () => {
      if (end <= this.#offset) return;
      let i = this.#head;
      while (i < this.#recs.length && this.#recs[i].end <= end) this.#events -= this.#recs[i++].count;
      if (i === this.#head || this.#recs[i - 1].end !== end) {
        throw new Error(`spool ack at ${end} is not a pending record boundary`);
      }
      this.#head = i;
      this.#offset = end;
      const drained = this.#offset === this.#size;
      const bigPrefix = this.#offset >= this.compactMinBytes && this.#offset >= this.#size - this.#offset;
      if (drained || bigPrefix) await this.#compact();
      else await this.#writeOffset();
    });
  }

  /** Move the pending suffix to a new generation file and switch to it. Called inside #serial. */
  async #compact(): Promise<void> {
    const gen = this.#gen + 1;
    const path = this.#path(gen);
    const file = await Deno.open(path, { read: true, append: true, create: true, truncate: false });
    try {
      await file.truncate(0);
      if (this.#size > this.#offset) {
        using src = await Deno.open(this.#path(this.#gen), { read: true });
        await src.seek(this.#offset, Deno.SeekMode.Start);
        const chunk = new Uint8Array(1 << 20);
        let left = this.#size - this.#offset;
        while (left > 0) {
          const n = await src.read(chunk.subarray(0, Math.min(chunk.length, left)));
          if (n === null) throw new Error("spool file ended early during compaction");
          await writeAll(file, chunk.subarray(0, n));
          left -= n;
        }
      }
      if (this.fsync) await file.sync();
    } catch (e) {
      file.close();
      await Deno.remove(path).catch(() => {});
      throw e;
    }
    const old = this.#path(this.#gen);
    const shift = this.#offset;
    this.#gen = gen;
    this.#offset = 0;
    await this.#writeOffset();
    this.#file.close();
    this.#file = file;
    await Deno.remove(old).catch(() => {});
    this.#recs = this.#recs.slice(this.#head).map((r) => ({
      start: r.start - shift,
      end: r.end - shift,
      count: r.count,
    }));
    this.#head = 0;
    this.#size -= shift;
  }

  /** Durably append refused events to the dead-letter file, one line each with the listener's reason. */
  deadLetter(events: T[], reason: { status?: number; error: string }): Promise<void> {
    return this.#serial(async () => {
      const at = new Date().toISOString();
      const text = events.map((event) =>
        JSON.stringify({ dead_lettered_at: at, status: reason.status ?? null, error: reason.error, event }) +
        "\n"
      ).join("");
      using f = await Deno.open(this.deadLetterPath, { append: true, create: true });
      await writeAll(f, encoder.encode(text));
      if (this.fsync) await f.sync();
    });
  }

  /** Finish pending operations and close the file; pending records stay for the next open. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#serial(() => Promise.resolve());
    this.#closed = true;
    this.#file.close();
  }
}
