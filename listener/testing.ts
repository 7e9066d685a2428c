/** Helpers for the listener's tests: temporary folders, a store over a temp log, sample events. */
import { EventStore, type StoreOptions } from "./file/store.ts";
import { createApp } from "./app.ts";
import type { Hono } from "hono";

/** A temp folder removed after `fn`, whatever happens. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "portwatch-test-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Store options over `dir`/portwatcher.log, fsync off unless overridden. */
export function storeOptions(dir: string, over: Partial<StoreOptions> = {}): StoreOptions {
  return {
    path: `${dir}/portwatcher.log`,
    fsync: false,
    maxBytes: 0,
    keep: 5,
    dedupeWindow: 10_000,
    recentSize: 1_000,
    ...over,
  };
}

/** A store and an app over a temp folder, closed after `fn`. */
export function withApp(
  fn: (ctx: { app: Hono; store: EventStore; dir: string }) => Promise<void>,
  over: Partial<StoreOptions> & { token?: string; bodyLimit?: number; ingestWaitMs?: number } = {},
): Promise<void> {
  return withTempDir(async (dir) => {
    const { token, bodyLimit, ingestWaitMs, ...opts } = over;
    const { store } = await EventStore.open(storeOptions(dir, opts));
    try {
      const app = createApp(store, {
        bodyLimit: bodyLimit ?? 1024 * 1024,
        token,
        heartbeatMs: 200,
        ingestWaitMs,
      });
      await fn({ app, store, dir });
    } finally {
      await store.close();
    }
  });
}

let n = 0;
/** A complete port event; fields can be overridden. */
export function sampleEvent(over: Record<string, unknown> = {}): Record<string, unknown> {
  n++;
  return {
    id: `00000000-0000-7000-8000-${String(n).padStart(12, "0")}-${crypto.randomUUID().slice(0, 8)}`,
    event: "open",
    port: 5000,
    proto: "tcp",
    family: 4,
    addrs: ["0.0.0.0"],
    pids: [123],
    container_id: "3f4e1c2b9a7d",
    container_name: "web",
    source: "polling",
    observed_at: new Date().toISOString(),
    host: "node-1",
    netns: 4026531840,
    ...over,
  };
}

/** The log's lines parsed. */
export async function readLog(path: string): Promise<Record<string, unknown>[]> {
  const text = await Deno.readTextFile(path).catch(() => "");
  return text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
}

/** Read Server-Sent Events from a response body: yields {id, data} per event; comments are skipped. */
export async function* sseEvents(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<{ id?: string; data: string }> {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      let sep: number;
      while ((sep = buf.indexOf("\n\n")) !== -1) {
        const block = buf.slice(0, sep);
        buf = buf.slice(sep + 2);
        let id: string | undefined;
        const data: string[] = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("id:")) id = line.slice(3).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (data.length > 0) yield { id, data: data.join("\n") };
      }
    }
  } finally {
    reader.releaseLock();
  }
}
