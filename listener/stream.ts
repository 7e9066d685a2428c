/**
 * `GET /events/stream`: Server-Sent Events of stored records, newest as they become durable. A client that
 * reconnects with `Last-Event-ID` first gets every record stored after that id, then the live ones, with no
 * gap and no repeat.
 * @module
 */
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import type { Store, StoredEntry } from "./store_api.ts";
import { type EventFilter, matches } from "./filter.ts";

/** A subscriber this far behind is cut off; it reconnects and resumes by id, losing nothing. */
export const MAX_BACKLOG = 100_000;

/** Stream the records matching `filter`, after `lastId` if given, then live. */
export function streamEvents(
  c: Context,
  store: Store,
  filter: EventFilter,
  lastId: string | undefined,
  heartbeatMs: number,
  shutdown?: AbortSignal,
): Response {
  return streamSSE(c, async (stream) => {
    let queue: StoredEntry[] = [];
    let wake: (() => void) | undefined;
    let closed = false;
    const unsubscribe = store.subscribe((entry) => {
      queue.push(entry);
      wake?.();
    }, filter);
    const end = () => {
      closed = true;
      wake?.();
    };
    stream.onAbort(end);
    shutdown?.addEventListener("abort", end, { once: true });
    if (shutdown?.aborted) return;
    try {
      await stream.write("retry: 1000\n\n");
      const replayed = new Set<string>();
      if (lastId) {
        for await (const e of store.replayAfter(lastId)) {
          if (closed) return;
          replayed.add(e.id);
          if (matches(e.record, filter)) await stream.writeSSE({ id: e.id, data: e.line });
        }
      }
      while (!closed) {
        if (queue.length > MAX_BACKLOG) return; // too slow: the client resumes from its last id
        const batch = queue;
        queue = [];
        for (const e of batch) {
          if (closed) return;
          if (replayed.size > 0 && replayed.has(e.id)) continue;
          if (matches(e.record, filter)) await stream.writeSSE({ id: e.id, data: e.line });
        }
        replayed.clear();
        if (queue.length > 0) continue;
        let timer: ReturnType<typeof setTimeout> | undefined;
        const woke = await new Promise<boolean>((resolve) => {
          wake = () => resolve(true);
          timer = setTimeout(() => resolve(false), heartbeatMs);
        });
        clearTimeout(timer);
        wake = undefined;
        if (!woke && !closed) await stream.write(": keep-alive\n\n");
      }
    } finally {
      unsubscribe();
      shutdown?.removeEventListener("abort", end);
    }
  });
}
