/** An EventSink that stores straight into a listener's store: the embedded stack (`deno task start`). */
import type { EventSink } from "../delivery/sink.ts";
import type { PortEvent } from "../events/schema.ts";
import type { Store } from "./store_api.ts";
import { validateRecords } from "./validate.ts";
import type { Verdicts } from "./verdicts.ts";

/**
 * Events go into `store` in-process: no HTTP, same validation, ids, policy verdicts (`verdicts`, the
 * listener's) and durability as POST /ingest.
 */
export class StoreSink implements EventSink {
  constructor(readonly store: Store, readonly verdicts?: Verdicts) {}

  /** Validate, judge and store; resolves once durable. */
  async send(events: PortEvent[]): Promise<void> {
    if (events.length === 0) return;
    const validated = validateRecords(
      events as unknown as Record<string, unknown>[],
      new Date().toISOString(),
    );
    await this.verdicts?.apply(validated);
    await this.store.ingest(validated.records, validated.prepared);
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
