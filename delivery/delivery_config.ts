/**
 * Delivery settings from the environment, and the sink they call for.
 *
 * - `LISTENER_URL`: unset → events go to stdout as JSON lines ({@link StdoutSink}); else an http(s) base URL
 *   (`http://host:8080`) or the ingest URL (`http://host:8080/ingest`) → {@link HttpSink}.
 * - `LISTENER_TOKEN`: bearer token; unset → none.
 * - `SPOOL_PATH`: the spool directory; default `/var/lib/portwatch/spool`, or `./spool` (relative to the
 *   working directory) when that cannot be created or written. Set explicitly, it is used or start-up fails.
 * - `SPOOL_MAX_BYTES`: size, at least 64KiB; default 256MiB. A full spool refuses new events (send rejects).
 * - `DELIVERY_TIMEOUT`: seconds > 0, at most 300, fractions allowed; default 2: the time one POST may take.
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { ConfigError, type EnvSource, firstSet, parseBytes, parseSecondsMs, parseUrl } from "../infra/env.ts";
import { type EventSink, StdoutSink } from "./sink.ts";
import { HttpSink } from "./http_sink.ts";
import { DEFAULT_SPOOL_MAX_BYTES } from "./spool.ts";

/** Parsed delivery settings. */
export interface DeliveryConfig {
  /** The listener; undefined means stdout. */
  url?: URL;
  /** LISTENER_TOKEN, sent as a bearer token. */
  token?: string;
  /** The spool directory; undefined means the default ({@link defaultSpoolDir}). */
  spoolDir?: string;
  /** SPOOL_MAX_BYTES. */
  spoolMaxBytes: number;
  /** DELIVERY_TIMEOUT in ms: the time one POST may take. */
  timeoutMs: number;
}

/** The preferred spool directory. */
export const SYSTEM_SPOOL_DIR = "/var/lib/portwatch/spool";
/** The fallback spool directory, relative to the working directory. */
export const LOCAL_SPOOL_DIR = "./spool";

/** Read the delivery settings; throws {@link ConfigError} naming the variable, value and what is accepted. */
export function deliveryConfigFromEnv(env: EnvSource): DeliveryConfig {
  const url = firstSet(env, "LISTENER_URL");
  const token = firstSet(env, "LISTENER_TOKEN");
  const spool = firstSet(env, "SPOOL_PATH");
  const max = firstSet(env, "SPOOL_MAX_BYTES");
  const timeout = firstSet(env, "DELIVERY_TIMEOUT");
  let timeoutMs = 2_000;
  if (timeout) {
    timeoutMs = parseSecondsMs(timeout.name, timeout.value);
    if (timeoutMs > 300_000) {
      throw new ConfigError(
        timeout.name,
        timeout.value,
        "a number of seconds > 0 and at most 300, e.g. 2 or 0.5",
      );
    }
  }
  return {
    url: url ? parseUrl(url.name, url.value) : undefined,
    token: token?.value,
    spoolDir: spool?.value,
    spoolMaxBytes: max ? parseBytes(max.name, max.value, 64 * 1024) : DEFAULT_SPOOL_MAX_BYTES,
    timeoutMs,
  };
}

/** The first of `candidates` that can be created and written (probed with a temporary file). */
export async function defaultSpoolDir(
  candidates: string[] = [SYSTEM_SPOOL_DIR, LOCAL_SPOOL_DIR],
): Promise<string> {
  const errors: string[] = [];
  for (const dir of candidates) {
    try {
      await Deno.mkdir(dir, { recursive: true });
      const probe = `${dir}/.probe-${Deno.pid}`;
      await Deno.writeTextFile(probe, "");
      await Deno.remove(probe);
      return dir;
    } catch (e) {
      errors.push(`${dir}: ${(e as Error).message}`);
    }
  }
  throw new Error(`no writable spool directory (set SPOOL_PATH): ${errors.join("; ")}`);
}

/** LISTENER_URL unset → {@link StdoutSink}; set → an opened {@link HttpSink}. Throws ConfigError if bad. */
export async function sinkFromEnv(env: EnvSource = Deno.env): Promise<EventSink> {
  const config = deliveryConfigFromEnv(env);
  if (!config.url) return new StdoutSink();
  const spoolDir = config.spoolDir ?? await defaultSpoolDir();
  getLogger(["portwatch", "delivery"]).info(
    "delivering to {url}; spool {dir} (at most {max} bytes), timeout {timeout} ms",
    { url: config.url.href, dir: spoolDir, max: config.spoolMaxBytes, timeout: config.timeoutMs },
  );
  return await HttpSink.open({
    url: config.url,
    token: config.token,
    spoolDir,
    spoolMaxBytes: config.spoolMaxBytes,
    timeoutMs: config.timeoutMs,
  });
}
