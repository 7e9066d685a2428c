/**
 * Waiting on a condition with a deadline, never a fixed sleep: for tests, benchmarks, the stack and start-up
 * checks. Where time must pass on purpose (nothing may arrive within a window, a hold time, a back-off), say so
 * with {@link elapse}.
 * @module
 */

/**
 * Resolve with the first truthy value `check` returns (polled every `intervalMs`), or throw after `ms` with an
 * error naming `what` (a function is called at the deadline, so the message can show the state then).
 *
 * @example
 * ```ts
 * let n = 0;
 * const timer = setInterval(() => n++, 5);
 * await waitUntil("the counter to pass 3", () => n > 3, 2_000);
 * clearInterval(timer);
 * ```
 */
export async function waitUntil<T>(
  what: string | (() => string),
  check: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  ms = 10_000,
  intervalMs = 20,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) {
      throw new Error(`timed out after ${ms} ms waiting for ${typeof what === "string" ? what : what()}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Let `ms` pass on purpose; `why` names the reason (nothing must happen within the window, a hold time, a
 * back-off being exercised). Not for waiting on something to happen: use {@link waitUntil}.
 *
 * @example
 * ```ts
 * await elapse(20, "a window in which no event may arrive");
 * ```
 */
export function elapse(ms: number, why: string): Promise<void> {
  if (why.trim() === "") throw new Error("elapse: say why the time must pass");
  return new Promise((r) => setTimeout(r, ms));
}
