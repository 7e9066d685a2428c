/**
 * Oracle workload: a small seeded random number generator (mulberry32), so that a seed printed by a failing run
 * replays the same actions.
 * @module
 */

/** The seed to use: ORACLE_SEED when set (a 32-bit unsigned integer), else a fresh random one. */
export function chooseSeed(value: string | undefined, random: () => number = Math.random): number {
  if (value === undefined || value.trim() === "") return Math.floor(random() * 2 ** 32) >>> 0;
  const v = value.trim();
  if (!/^\d+$/.test(v) || Number(v) >= 2 ** 32) {
    throw new Error(`ORACLE_SEED=${JSON.stringify(value)}: expected an integer from 0 to ${2 ** 32 - 1}`);
  }
  return Number(v);
}

/** Deterministic pseudo-random numbers from a 32-bit seed. */
export class Rng {
  #state: number;

  constructor(readonly seed: number) {
    this.#state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    // mulberry32
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One element of a non-empty list. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("Rng.pick of an empty list");
    return items[this.int(items.length)];
  }

  /** One key of `weights` (weight > 0), with probability proportional to its weight. */
  weighted<K extends string>(weights: Partial<Record<K, number>>): K {
    const entries = (Object.entries(weights) as [K, number][]).filter(([, w]) => w > 0);
    if (entries.length === 0) throw new Error("Rng.weighted with no positive weight");
    let r = this.next() * entries.reduce((s, [, w]) => s + w, 0);
    for (const [k, w] of entries) {
      r -= w;
      if (r < 0) return k;
    }
    return entries[entries.length - 1][0];
  }

  /** A shuffled copy of `items` (Fisher-Yates). */
  shuffle<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }
}
