/** Running an engine until a signal, with the graceful shutdown every portwatch program shares. */
import { getLogger } from "@logtape/logtape";

/** What can be run and shut down. */
export interface Runnable {
  run(): Promise<unknown>;
  shutdown(): Promise<{ closes: number; delivered: boolean }>;
}

/** Run an engine until SIGTERM/SIGINT/SIGQUIT: graceful shutdown closes, then `after` (e.g. closing a sink). */
export async function runUntilSignal(
  engine: Runnable,
  after: () => Promise<void>,
): Promise<number> {
  const log = getLogger(["portwatch", "watcher"]);
  let stopping: Promise<number> | undefined;
  const stop = (signal: string) => {
    stopping ??= (async () => {
      log.info("{signal}: sending a close for each tracked port, then exiting", { signal });
      const { closes, delivered } = await engine.shutdown();
      await after();
      log.info("{closes} shutdown close(s) {state}", {
        closes,
        state: delivered ? "delivered" : "left in the spool for the next start",
      });
      return 0;
    })();
    return stopping;
  };
  const done = new Promise<number>((resolve) => {
    for (const s of ["SIGTERM", "SIGINT", "SIGQUIT"] as const) {
      Deno.addSignalListener(s, () => stop(s).then(resolve));
    }
  });
  await engine.run();
  return stopping ? await done : await stop("engine ended");
}
