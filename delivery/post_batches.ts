/**
 * How a send's events are cut into POSTs: at most so many events and so many bytes of NDJSON each, every event
 * serialised once, for its size and for the body alike. Pure.
 * @module
 */
import type { PortEvent } from "../events/schema.ts";
import { utf8Length } from "../infra/utf8.ts";

/** Events of one POST and their NDJSON lines. */
export interface Batch {
  events: PortEvent[];
  lines: string[];
}

const NON_ASCII = /[\u0080-\uffff]/;

/**
 * Split `events` into batches of at most `maxEvents` events and `maxBytes` bytes of NDJSON (each line and its
 * "\n"), in order; an event larger than `maxBytes` goes alone. `lines`, when the caller serialised the events
 * already (the reporter, for its outbox), are used instead of serialising them again; they must be one per event.
 */
export function toBatches(
  events: PortEvent[],
  maxEvents: number,
  maxBytes: number,
  lines?: readonly string[],
): Batch[] {
  if (lines !== undefined && lines.length !== events.length) {
    throw new RangeError(`toBatches: ${lines.length} JSON lines for ${events.length} events`);
  }
  const out: Batch[] = [];
  let cur: Batch = { events: [], lines: [] };
  let bytes = 0;
  const made = lines;
  for (let i = 0; i < events.length; i++) {
    const e = events[i];
    const line = made ? made[i] : JSON.stringify(e);
    const size = (NON_ASCII.test(line) ? utf8Length(line) : line.length) + 1;
    if (cur.events.length > 0 && (cur.events.length >= maxEvents || bytes + size > maxBytes)) {
      out.push(cur);
      cur = { events: [], lines: [] };
      bytes = 0;
    }
    cur.events.push(e);
    cur.lines.push(line);
    bytes += size;
  }
  if (cur.events.length > 0) out.push(cur);
  return out;
}
