/**
 * The policy in force, kept from a file (POLICY_PATH): read at start, read again when the file changes and on
 * SIGHUP. A bad file (its first problem, `file:line:column: reason`) is reported and the last good policy stays
 * in force; a file that is bad at start leaves no policy (every port allowed) until it is fixed.
 * @module
 */
import { loadPolicy, PolicyError } from "./load.ts";
import type { Policy } from "./match.ts";

/** How a holder reports what happened to its file. */
export interface PolicyHolderEvents {
  /** A policy was read and is in force now. */
  loaded?: (policy: Policy, path: string) => void;
  /** The file is bad or unreadable; the last good policy (if any) stays in force. */
  rejected?: (error: PolicyError) => void;
}

/** Keeps the last good policy from one file. */
export class PolicyHolder {
  #policy?: Policy;
  #watcher?: Deno.FsWatcher;
  #debounce?: ReturnType<typeof setTimeout>;
  #reloading: Promise<void> = Promise.resolve();
  #onSignal = () => void this.reload();
  #closed = false;
  /** Good reads and rejected ones, for metrics. */
  readonly counts = { loaded: 0, rejected: 0 };

  /**
   * @param path the policy file
   * @param events callbacks for logs and metrics
   * @param debounceMs how long file events gather before the file is read again (an editor writes in steps)
   */
  constructor(readonly path: string, readonly events: PolicyHolderEvents = {}, readonly debounceMs = 100) {}

  /** The policy in force, or undefined when no good one was read yet. */
  get policy(): Policy | undefined {
    return this.#policy;
  }

  /** Read the file now (in turn with other reads); resolves once it is in force or rejected. */
  reload(): Promise<void> {
    this.#reloading = this.#reloading.then(async () => {
      if (this.#closed) return;
      try {
        const policy = await loadPolicy(this.path);
        this.#policy = policy;
        this.counts.loaded++;
        this.events.loaded?.(policy, this.path);
      } catch (e) {
        if (!(e instanceof PolicyError)) throw e;
        this.counts.rejected++;
        this.events.rejected?.(e);
      }
    });
    return this.#reloading;
  }

  /**
   * Read the file, then follow it: its directory is watched (an editor may replace the file), and SIGHUP reads
   * it again. Resolves after the first read.
   */
  async start(): Promise<void> {
    await this.reload();
    const dir = this.path.includes("/") ? this.path.slice(0, this.path.lastIndexOf("/")) || "/" : ".";
    const name = this.path.slice(this.path.lastIndexOf("/") + 1);
    try {
      this.#watcher = Deno.watchFs(dir, { recursive: false });
    } catch {
      this.#watcher = undefined; // no directory to watch: SIGHUP still works
    }
    if (this.#watcher) {
      const watcher = this.#watcher;
      (async () => {
        for await (const ev of watcher) {
          if (!ev.paths.some((p) => p.endsWith(`/${name}`) || p === this.path)) continue;
          clearTimeout(this.#debounce);
          this.#debounce = setTimeout(() => void this.reload(), this.debounceMs);
        }
      })().catch(() => {});
    }
    Deno.addSignalListener("SIGHUP", this.#onSignal);
  }

  /** Stop following the file. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#debounce);
    this.#watcher?.close();
    try {
      Deno.removeSignalListener("SIGHUP", this.#onSignal);
    } catch { /* never added */ }
    await this.#reloading;
  }
}
