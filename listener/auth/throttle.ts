/**
 * Wrong tokens at `POST /signin` are limited per client address: after {@link SIGNIN_FAILURES} within
 * {@link SIGNIN_WINDOW_MS}, further attempts from that address are answered 429 (with `Retry-After`) until the
 * oldest failure leaves the window, so a weak LISTENER_TOKEN cannot be guessed at the listener's speed. A right
 * token is still checked only once the address may try again. Pure: the caller gives the time.
 *
 * @example
 * ```ts
 * const throttle = new SignInThrottle();
 * const wait = throttle.waitMs("10.0.0.7", Date.now()); // 0: may try
 * throttle.failed("10.0.0.7", Date.now());
 * ```
 * @module
 */

/** Wrong tokens allowed per address within the window. */
export const SIGNIN_FAILURES = 10;
/** The window, ms: 5 minutes. */
export const SIGNIN_WINDOW_MS = 5 * 60_000;
/** Addresses remembered at most (the oldest are forgotten first). */
const MAX_ADDRESSES = 10_000;

/** Failed sign-ins per client address. */
export class SignInThrottle {
  readonly #failures = new Map<string, number[]>();

  constructor(readonly limit = SIGNIN_FAILURES, readonly windowMs = SIGNIN_WINDOW_MS) {}

  #recent(address: string, now: number): number[] {
    const times = (this.#failures.get(address) ?? []).filter((t) => now - t < this.windowMs);
    if (times.length === 0) this.#failures.delete(address);
    else this.#failures.set(address, times);
    return times;
  }

  /** How long `address` must wait before it may try again, ms (0: it may now). */
  waitMs(address: string, now: number): number {
    const times = this.#recent(address, now);
    return times.length < this.limit ? 0 : times[times.length - this.limit] + this.windowMs - now;
  }

  /** Count a wrong token from `address`. */
  failed(address: string, now: number): void {
    const times = this.#recent(address, now);
    times.push(now);
    this.#failures.delete(address); // re-inserted last: the map's order is by latest failure
    this.#failures.set(address, times);
    if (this.#failures.size > MAX_ADDRESSES) this.#failures.delete(this.#failures.keys().next().value!);
  }

  /** A right token: the address's failures are forgotten. */
  succeeded(address: string): void {
    this.#failures.delete(address);
  }
}
