/**
 * The policy in force, kept from a file (POLICY_PATH): read at start, read again when the file changes and on
 * SIGHUP. Changes are found by looking at the file's status (modification time, size, inode) twice a second and
 * reading it once that status has held for one look: an editor that writes in steps or replaces the file, and
 * a Kubernetes ConfigMap's symlink swap, are all seen, and a busy directory (the policy beside the log) costs
 * nothing, which watching the directory did (an event for every write of the log). A bad file (its first problem, `file:line:column: reason`) is reported and the last good policy stays
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
  #timer?: ReturnType<typeof setInterval>;
  /** The file's status when it was last read, and at the last look. */
  #read = "";
  #seen = "";
  #reloading: Promise<void> = Promise.resolve();
  #onSignal = () => void this.reload();
  #closed = false;
  /** Good reads and rejected ones, for metrics. */
  readonly counts = { loaded: 0, rejected: 0 };

  /**
   * @param path the policy file
   * @param events callbacks for logs and metrics
   * @param pollMs how often the file's status is looked at (ms)
   */
  constructor(readonly path: string, readonly events: PolicyHolderEvents = {}, readonly pollMs = 500) {}

  /** The policy in force, or undefined when no good one was read yet. */
  get policy(): Policy | undefined {
    return this.#policy;
  }

  /** Read the file now (in turn with other reads); resolves once it is in force or rejected. */
  reload(): Promise<void> {
    this.#reloading = this.#reloading.then(async () => {
      if (this.#closed) return;
      this.#read = this.#seen = await this.#status();
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

  /** The file's status as a text: modification time, size, inode ("" when it cannot be read). */
  async #status(): Promise<string> {
    try {
      const st = await Deno.stat(this.path);
      return `${st.mtime?.getTime()}|${st.size}|${st.ino}`;
    } catch {
      return "";
    }
  }

  /** One look: a status that changed since the last read and held since the last look is read now. */
  async #look(): Promise<void> {
    const now = await this.#status();
    const stable = now === this.#seen;
    this.#seen = now;
    if (stable && now !== this.#read && now !== "") await this.reload();
  }

  /** Read the file, then follow it (its status, twice a second) and read it again on SIGHUP. */
  async start(): Promise<void> {
    await this.reload();
    let looking = false;
    this.#timer = setInterval(() => {
      if (looking || this.#closed) return;
      looking = true;
      this.#look().catch(() => {}).finally(() => looking = false);
    }, this.pollMs);
    Deno.addSignalListener("SIGHUP", this.#onSignal);
  }

  /** Stop following the file. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    try {
      Deno.removeSignalListener("SIGHUP", this.#onSignal);
    } catch { /* never added */ }
    await this.#reloading;
  }
}
