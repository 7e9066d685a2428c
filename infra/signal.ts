/**
 * A wake-up call for background loops: `fire()` wakes every current waiter; a waiter may also give up after
 * a timeout.
 * @module
 */

/** Wakes every waiter; a waiter may also give up after `ms`. */
export class Signal {
  #waiters = new Set<() => void>();

  /** Wake everyone waiting now (later waiters wait for the next fire). */
  fire(): void {
    const ws = [...this.#waiters];
    this.#waiters.clear();
    for (const w of ws) w();
  }

  /** Resolves at the next fire, or after `ms` when given. */
  wait(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        resolve();
      };
      this.#waiters.add(done);
      if (ms !== undefined) timer = setTimeout(done, Math.max(0, ms));
    });
  }
}
