/**
 * Tracee as a SocketEventSource: `tracee` (TRACE_EBPF_EVENTS, TRACEE_ARGS) run by the adapter in
 * ebpf/tracee/, or, with TRACEE_INPUT=<file or ->, Tracee JSON lines read from a file or stdin.
 * @module
 */
import type { EnvSource } from "../infra/env.ts";
import { EngineUnavailableError, type SocketEventSource } from "./event_source.ts";
import type { SocketEvent } from "./socket_event.ts";
import { readTraceeFile, runTracee, type TraceeStream } from "./tracee/run.ts";
import { traceeSettingsFromEnv } from "./tracee/settings.ts";

/** Tracee prints nothing when its probes are attached: it counts as ready once it has run this long. */
const SETTLE_MS = 2000;

/** Start Tracee (or read its output from TRACEE_INPUT), or throw EngineUnavailableError saying why not. */
export async function startTraceeSource(env: EnvSource): Promise<SocketEventSource> {
  const settings = traceeSettingsFromEnv(env);
  const abort = new AbortController();
  const input = env.get("TRACEE_INPUT");
  const path = env.get("PATH");
  const stream = input
    ? readTraceeFile(input, { signal: abort.signal })
    : runTracee({ ...settings, signal: abort.signal, env: path ? { PATH: path } : undefined });
  const source = new TraceeSource(stream, abort, input !== undefined);
  await source.start();
  return source;
}

class TraceeSource implements SocketEventSource {
  readonly name = "tracee";
  readonly lost = 0;
  #ready!: Promise<void>;
  #buffered: SocketEvent[] = [];
  #onEvent?: (e: SocketEvent) => void;
  #done!: Promise<string>;

  constructor(readonly stream: TraceeStream, readonly abort: AbortController, readonly fromFile: boolean) {}

  get ready(): Promise<void> {
    return this.#ready;
  }

  /** Begin reading; ready once Tracee has stayed up SETTLE_MS (or at once for a file). */
  async start(): Promise<void> {
    this.#done = (async () => {
      try {
        for await (const e of this.stream) {
          if (this.#onEvent) this.#onEvent(e);
          else this.#buffered.push(e);
        }
        const exit = await this.stream.exit;
        return exit.stopped ? "tracee stopped" : `tracee exited (${exit.signal ?? `code ${exit.code}`})`;
      } catch (e) {
        return `tracee failed: ${(e as Error).message}`;
      }
    })();
    let early: string | undefined;
    const settled = this.fromFile ? Promise.resolve() : new Promise<void>((r) => setTimeout(r, SETTLE_MS));
    await Promise.race([settled, this.#done.then((why) => (early = why))]);
    if (early !== undefined && !this.fromFile) throw new EngineUnavailableError("tracee", early);
    this.#ready = Promise.resolve();
  }

  run(onEvent: (e: SocketEvent) => void): Promise<string> {
    for (const e of this.#buffered) onEvent(e);
    this.#buffered = [];
    this.#onEvent = onEvent;
    return this.#done;
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.#done;
  }
}
