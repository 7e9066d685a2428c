/**
 * The tracker's state on disk (SNAPSHOT_PATH), written atomically (temp file, fsync unless on tmpfs, rename)
 * on every change, so a restarted watcher diffs against what was open before: a port that opened or closed while it was down
 * gets its event, and a port still open gets no second `open`.
 * @module
 */
import { dirname } from "node:path";
import type { TrackerState } from "./tracker.ts";

/** Default snapshot path, as the seed had it (tmpfs: survives a watcher restart, not a reboot). */
export const DEFAULT_SNAPSHOT_PATH = "/dev/shm/portwatcher.snapshot";

/** Snapshot contents: the tracker state plus whose it is. */
export interface Snapshot {
  /** Identity key of the watcher that wrote it (host/container/scope); another watcher's snapshot is ignored. */
  owner: string;
  savedAt: string;
  state: TrackerState;
  /**
   * Events already decided (the state above includes them) but not yet handed to delivery when this was
   * written: a restarted watcher sends them first, with their ids, so a crash in between loses nothing and,
   * thanks to the listener's id dedupe, repeats nothing.
   */
  outbox?: unknown[];
}

/** A snapshot whose state is already serialised (TrackerState as JSON): written as the `state` field. */
export interface SerialisedSnapshot {
  owner: string;
  savedAt: string;
  stateJson: string;
}

const madeDirs = new Set<string>();
const enc = new TextEncoder();

/** Whether each snapshot directory is on tmpfs (from /proc/self/mountinfo, once per directory). */
const tmpfsDirs = new Map<string, boolean>();

/**
 * True when `dir` lives on a tmpfs (the default, /dev/shm): there fsync has nothing to make durable (the
 * page cache is the storage) yet costs a syscall per write, which under a storm of changes adds up.
 */
export function isTmpfs(dir: string, mountinfo?: string): boolean {
  let known = tmpfsDirs.get(dir);
  if (known !== undefined && mountinfo === undefined) return known;
  known = false;
  try {
    const real = Deno.realPathSync(dir);
    let best = -1;
    for (const line of (mountinfo ?? Deno.readTextFileSync("/proc/self/mountinfo")).split("\n")) {
      // id parent major:minor root mountpoint options [optional fields] - fstype source superoptions
      const f = line.split(" ");
      const mount = f[4]?.replace(/\\040/g, " ");
      const dash = f.indexOf("-");
      if (!mount || dash < 0) continue;
      const under = real === mount || real.startsWith(mount === "/" ? "/" : `${mount}/`);
      if (under && mount.length >= best) {
        best = mount.length;
        known = f[dash + 1] === "tmpfs";
      }
    }
  } catch { /* unknown: fsync */ }
  if (mountinfo === undefined) tmpfsDirs.set(dir, known);
  return known;
}

/**
 * Write the snapshot atomically. Synchronous on purpose: on the default tmpfs path it takes microseconds, far
 * less than the async file operations it replaced cost the event loop at thousands of changes a second.
 * `outboxJson`, when given, is the outbox already serialised, in parts (each a comma-separated run of JSON
 * values, as `JSON.stringify(events).slice(1, -1)`, as text or already UTF-8 encoded): a writer that keeps
 * several batches in its outbox serialises and encodes each once, not at every write (the snapshot's `outbox`
 * must then be absent). The state may come serialised too ({@link SerialisedSnapshot}).
 */
export function saveSnapshot(
  path: string,
  snapshot: Snapshot | SerialisedSnapshot,
  outboxJson?: (string | Uint8Array)[],
): Promise<void> {
  try {
    if (!madeDirs.has(dirname(path))) {
      Deno.mkdirSync(dirname(path), { recursive: true });
      madeDirs.add(dirname(path));
    }
    const tmp = `${path}.tmp-${Deno.pid}`;
    const file = Deno.openSync(tmp, { write: true, create: true, truncate: true });
    try {
      const text = "stateJson" in snapshot
        ? `${
          JSON.stringify({ owner: snapshot.owner, savedAt: snapshot.savedAt }).slice(0, -1)
        },"state":${snapshot.stateJson}}`
        : JSON.stringify(snapshot);
      const parts = outboxJson?.filter((p) => p.length > 0).map((p) =>
        typeof p === "string" ? enc.encode(p) : p
      );
      let buf: Uint8Array;
      if (parts?.length) {
        // One buffer, one write: the state, then the encoded parts joined by commas (no re-encoding).
        const head = enc.encode(`${text.slice(0, -1)},"outbox":[`);
        buf = new Uint8Array(head.length + parts.reduce((n, p) => n + p.length + 1, 0) + 1);
        buf.set(head);
        let at = head.length;
        for (let i = 0; i < parts.length; i++) {
          if (i > 0) buf[at++] = 0x2c; // ,
          buf.set(parts[i], at);
          at += parts[i].length;
        }
        buf[at++] = 0x5d; // ]
        buf[at++] = 0x7d; // }
      } else buf = enc.encode(text);
      let off = 0;
      while (off < buf.length) off += file.writeSync(buf.subarray(off));
      if (!isTmpfs(dirname(path))) file.syncSync();
    } finally {
      file.close();
    }
    Deno.renameSync(tmp, path);
    return Promise.resolve();
  } catch (e) {
    return Promise.reject(e);
  }
}

/** Read the snapshot; undefined when missing, unreadable, or another watcher's (with the reason). */
export async function loadSnapshot(
  path: string,
  owner: string,
): Promise<{ snapshot?: Snapshot; problem?: string }> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return {};
    return { problem: `cannot read ${path}: ${(e as Error).message}` };
  }
  try {
    const s = JSON.parse(text) as Snapshot;
    if (s?.state?.version !== 1 || !Array.isArray(s.state.ports)) {
      return { problem: `${path} is not a portwatch snapshot (version 1); starting fresh` };
    }
    if (s.owner !== owner) return { problem: `${path} belongs to ${s.owner}, not ${owner}; starting fresh` };
    return { snapshot: s };
  } catch (e) {
    return { problem: `${path} is not valid JSON (${(e as Error).message}); starting fresh` };
  }
}
