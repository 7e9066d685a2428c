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

/** Events' JSON lines already made by the caller (see {@link withJsonLines}), by the events' array. */
const jsonLines = new WeakMap<PortEvent[], string[]>();

/**
 * Hand `lines` (`JSON.stringify` of each event, in order) along with `events` to an HttpSink's send, so that
 * a caller that serialised them already (the reporter, for its outbox) does not pay for it twice.
 */
export function withJsonLines(events: PortEvent[], lines: string[]): PortEvent[] {
  if (lines.length === events.length) jsonLines.set(events, lines);
  return events;
}

/**
 * Split `events` into batches of at most `maxEvents` events and `maxBytes` bytes of NDJSON (each line and its
 * "\n"), in order; an event larger than `maxBytes` goes alone.
 */
export function toBatches(events: PortEvent[], maxEvents: number, maxBytes: number): Batch[] {
  const out: Batch[] = [];
  let cur: Batch = { events: [], lines: [] };
  let bytes = 0;
  const made = jsonLines.get(events);
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
