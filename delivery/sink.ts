/**
 * Where engines hand their events: one interface for every engine (polling, bpftrace, Tracee), so delivery is
 * written once.
 * @module
 */
import type { PortEvent } from "../events/schema.ts";

/** A destination for events. */
export interface EventSink {
  /**
   * Hand over events. Resolves once they are safe: delivered (2xx from the listener) or written to the durable
   * spool, from which they are delivered later in order. Never drops events; rejects only when neither the
   * listener nor the spool can take them. `lines`, when the caller has them, are the events' JSON
   * (`JSON.stringify` of each, in order): a sink that sends JSON uses them instead of serialising again.
   */
  send(events: PortEvent[], lines?: readonly string[]): Promise<void>;
  /** Try to deliver everything pending within `timeoutMs`; resolves true when nothing is left undelivered. */
  flush(timeoutMs: number): Promise<boolean>;
  /** Stop background work (retries); pending events stay in the spool for the next start. */
  close(): Promise<void>;
}

/** Events as JSON lines on stdout: the sink when no LISTENER_URL is set. */
export class StdoutSink implements EventSink {
  #enc = new TextEncoder();
  /** Writes one compact JSON line per event. */
  send(events: PortEvent[]): Promise<void> {
    if (events.length > 0) {
      const text = events.map((e) => JSON.stringify(e)).join("\n") + "\n";
      const buf = this.#enc.encode(text);
      let off = 0;
      while (off < buf.length) off += Deno.stdout.writeSync(buf.subarray(off));
    }
    return Promise.resolve();
  }
  /** Nothing is ever pending. */
  flush(): Promise<boolean> {
    return Promise.resolve(true);
  }
  /** Nothing to stop. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}
