/** A sink for tests: it keeps every event it is given, in order. */
import type { EventSink } from "../delivery/sink.ts";
import type { PortEvent } from "../events/schema.ts";

/** An {@link EventSink} that keeps what it is given in `sent`; nothing is ever pending. */
export class CollectingSink implements EventSink {
  /** Every event sent, in order. */
  sent: PortEvent[] = [];
  /** Keep the events. */
  send(events: PortEvent[]): Promise<void> {
    this.sent.push(...events);
    return Promise.resolve();
  }
  /** Nothing is pending. */
  flush(): Promise<boolean> {
    return Promise.resolve(true);
  }
  /** Nothing to stop. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}
