/**
 * What the namespace benchmarks (watcher, ebpf) share: tracking everything they start so it is stopped even on
 * SIGINT, a seeded PRNG, percentiles, and the real listener started inside a namespace.
 * @module
 */
import { fileURLToPath } from "node:url";
import type { NetNs } from "../testing/netns.ts";
import { Proc } from "./procs.ts";
import { listenerCommand, LISTENING_LINE } from "../testing/listener.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** Something a benchmark started and must stop: a process, a namespace, a holder. */
export type Stoppable = { stop(): Promise<unknown> } | { delete(): Promise<void> } | {
  close(): Promise<void>;
};

/** Everything started, stopped newest first (processes before the namespace they run in). */
export class Resources {
  #items = new Set<Stoppable>();
  #closed = false;

  constructor(readonly name: string) {}

  /** Track `x`; once releaseAll() has begun (SIGINT), `x` is stopped by it too and the caller is stopped here. */
  track<T extends Stoppable>(x: T): T {
    this.#items.add(x);
    if (this.#closed) throw new Error("interrupted");
    return x;
  }

  /** Stop `x` now (if tracked). */
  async release(x: Stoppable): Promise<void> {
    if (!this.#items.delete(x)) return;
    await stopOne(x);
  }

  /** Stop everything tracked, newest first, until none is left. */
  async releaseAll(): Promise<void> {
    this.#closed = true;
    while (this.#items.size > 0) {
      const items = [...this.#items].reverse();
      this.#items.clear();
      for (const x of items) {
        try {
          await stopOne(x);
        } catch (e) {
          console.error(`${this.name} bench: cleanup: ${(e as Error).message}`);
        }
      }
    }
  }
}

async function stopOne(x: Stoppable): Promise<void> {
  if ("stop" in x) await x.stop();
  else if ("delete" in x) await x.delete();
  else await x.close();
}

/** A seeded PRNG (mulberry32), so that schedules are the same from run to run. */
export function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Start `argv` inside `ns` (ip netns exec execs in place: the pid is the program's). */
export function startIn(ns: NetNs, argv: string[], env: Record<string, string> = {}): Proc {
  const [cmd, ...args] = ns.wrap(argv);
  return Proc.start({ cmd, args, cwd: ROOT, env: { NO_COLOR: "1", ...env } });
}

/** A listener running in a benchmark's namespace. */
export interface Listener {
  proc: Proc;
  url: string;
  port: number;
  logPath: string;
}

/** The real listener (fsync off) inside `ns`, logging to `dir`/listener.log; `extra` flags are added. */
export async function startListener(
  res: Resources,
  ns: NetNs,
  dir: string,
  extra: string[] = [],
): Promise<Listener> {
  const logPath = `${dir}/listener.log`;
  const proc = res.track(startIn(ns, listenerCommand(logPath, { args: ["--fsync", "0", ...extra] })));
  const url = (await proc.waitForLine(LISTENING_LINE))[1];
  return { proc, url, port: Number(new URL(url).port), logPath };
}
