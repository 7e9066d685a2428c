/**
 * Test helpers for streams of socket events: a deadline on any promise, and every event of a stream.
 * @module
 */
import type { SocketEvent } from "../../socket_event.ts";

/** `promise`, or a rejection naming `what` after `ms`. */
export async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** All events of a stream (with a deadline). */
export async function collect(stream: AsyncIterable<SocketEvent>, ms = 20_000): Promise<SocketEvent[]> {
  const out: SocketEvent[] = [];
  await withDeadline(
    (async () => {
      for await (const e of stream) out.push(e);
    })(),
    ms,
    "collecting events",
  );
  return out;
}
