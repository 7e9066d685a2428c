/** Waiting on a condition with a deadline, never a fixed sleep: for tests, the stack and start-up checks. */

/** Resolve once `check` returns true (polled every `intervalMs`), or throw after `ms` naming `what`. */
export async function waitUntil(
  what: string,
  check: () => boolean | Promise<boolean>,
  ms = 10_000,
  intervalMs = 20,
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
