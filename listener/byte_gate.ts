/**
 * A budget of bytes shared by concurrent work: `acquire(n)` waits until `n` bytes fit under the limit, in
 * arrival order; `release(n)` gives them back. The listener passes request bodies through it so that only so
 * many bytes of ingest are read, parsed and waiting for the disk at once: under a burst of large batches the
 * rest wait unread in their sockets (kernel buffers), not as parsed records in the heap.
 * @module
 */

/** A first-come, first-served budget of bytes. */
export class ByteGate {
  #used = 0;
  #waiting: { n: number; go: () => void; gone?: boolean }[] = [];
  #head = 0;

  /** `limit` bytes at once; an acquire larger than the limit waits until nothing else holds any. */
  constructor(readonly limit: number) {}

  /** Bytes held now. */
  get used(): number {
    return this.#used;
  }

  /** Resolves (at once when the budget allows and nobody waits) once `n` bytes are held. */
  acquire(n: number): Promise<void> | undefined {
    if (this.#head === this.#waiting.length && this.#fits(n)) {
      this.#used += n;
      return undefined;
    }
    return new Promise((go) => this.#waiting.push({ n, go }));
  }

  /**
   * Like {@link acquire}, waiting at most `ms`: true once `n` bytes are held (at once: `true` itself), false
   * when they did not fit in time (nothing is held then, and the waiter leaves the queue).
   */
  acquireWithin(n: number, ms: number): true | Promise<boolean> {
    if (this.#head === this.#waiting.length && this.#fits(n)) {
      this.#used += n;
      return true;
    }
    return new Promise((resolve) => {
      const w = {
        n,
        gone: false,
        go: () => {
          clearTimeout(timer);
          resolve(true);
        },
      };
      const timer = setTimeout(() => {
        w.gone = true;
        resolve(false);
        this.release(0); // the ones behind it may fit now
      }, ms);
      this.#waiting.push(w);
    });
  }

  /** Give back `n` bytes and let waiters that now fit go, in order. */
  release(n: number): void {
    this.#used -= n;
    while (this.#head < this.#waiting.length) {
      const w = this.#waiting[this.#head];
      if (w.gone) {
        this.#head++;
        continue;
      }
      if (!this.#fits(w.n)) break;
      this.#used += w.n;
      this.#head++;
      w.go();
    }
    if (this.#head === this.#waiting.length) {
      this.#waiting = [];
      this.#head = 0;
    }
  }

  #fits(n: number): boolean {
    return this.#used === 0 || this.#used + n <= this.limit;
  }
}
