/**
 * The ids of the most recent stored records, so a retried event is acknowledged without being written twice.
 * Bounded: the oldest ids leave first (watchers retry within minutes, not after millions of events).
 * @module
 */

/** A set of the last `capacity` ids added. */
export class IdWindow {
  #set = new Set<string>();
  #ring: (string | undefined)[];
  #next = 0;

  constructor(readonly capacity: number) {
    this.#ring = new Array(capacity);
  }

  /** True when `id` is among the last `capacity` ids added. */
  has(id: string): boolean {
    return this.#set.has(id);
  }

  /** Remember `id`, forgetting the oldest when full. */
  add(id: string): void {
    if (this.capacity === 0 || this.#set.has(id)) return;
    const old = this.#ring[this.#next];
    if (old !== undefined) this.#set.delete(old);
    this.#ring[this.#next] = id;
    this.#next = (this.#next + 1) % this.capacity;
    this.#set.add(id);
  }

  /** How many ids are remembered. */
  get size(): number {
    return this.#set.size;
  }
}
