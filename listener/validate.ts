/**
 * Checks parsed items against the event contract and turns them into the records the log stores. A batch is
 * accepted whole or not at all: one bad item rejects it, naming the item, the field and the reason.
 * @module
 */
import { IngestEventSchema } from "../events/schema.ts";
import { uuidv7 } from "../events/id.ts";
import { isPlainValidEvent } from "./fast_check.ts";

/** One reason an item was refused. */
export interface ItemIssue {
  /** Position of the item in the batch (0 for a single event). */
  index: number;
  /** Dotted path of the field, e.g. `port` or `pids.1`; empty for the item itself. */
  path: string;
  /** What is wrong and what is accepted. */
  message: string;
}

/** A batch with at least one item that is not a valid event or message. */
export class ValidationError extends Error {
  constructor(readonly issues: ItemIssue[]) {
    const first = issues[0];
    super(
      `item ${first.index} is invalid${first.path ? ` at \`${first.path}\`` : ""}: ${first.message}` +
        (issues.length > 1 ? ` (and ${issues.length - 1} more issue${issues.length > 2 ? "s" : ""})` : "") +
        "; nothing in this request was stored",
    );
    this.name = "ValidationError";
  }
}

/** A record ready to store: `ts` and `id` first, then the item's fields. */
export type Record_ = { ts: string; id: string; [key: string]: unknown };

/**
 * What validation learnt about each record, handed to the store beside the records (see {@link validateRecords}).
 * Stores that write JSON lines use it; others ignore it.
 */
export interface Prepared {
  /**
   * The record's log line where validation could build it from the client's own text (ts and id first, as
   * every stored line); undefined where the record must be serialised.
   */
  lines: (string | undefined)[];
  /** 1 where the record's id was made here, just now: it cannot have been stored before. */
  freshIds: Uint8Array;
}

/** Validated records and what validation learnt about each (same order, same length). */
export interface Validated {
  records: Record_[];
  prepared: Prepared;
}

const MAX_ISSUES = 20;

/** True when the item is a port event (it has an `event` field); otherwise it must be a `message`. */
export function isEventItem(item: Record<string, unknown>): boolean {
  return "event" in item;
}

/** Whitespace JSON allows between tokens (any of it, even inside a string, sends an item to the slow path). */
const WHITESPACE = /[ \t\r\n]/;

/**
 * The log line for a valid event from its client's text `text`, or undefined when that text cannot be written
 * through as it is: `{"ts":"<ts>",` spliced in front of the text (and `"id":"<id>",` for a new id), which is
 * what JSON.stringify would make of the record when the text is compact and its id, if any, comes first.
 */
function lineFrom(
  text: string,
  ts: string,
  id: string | undefined,
  newId: string | undefined,
): string | undefined {
  if (text.charCodeAt(0) !== 123 || WHITESPACE.test(text)) return undefined; // "{"
  if (newId !== undefined) return `{"ts":"${ts}","id":"${newId}",${text.slice(1)}`;
  const head = `{"id":${JSON.stringify(id)}`;
  if (!text.startsWith(head) || text.charCodeAt(head.length) !== 44) return undefined; // ","
  return `{"ts":"${ts}",${text.slice(1)}`;
}

/**
 * Validate every item, then build records stamped with `ts`. Items without an `id` get a new UUIDv7; a
 * client's own `ts` is kept as `client_ts` (the listener's clock is the log's order).
 *
 * `texts` (from parseBody) holds the text each item was parsed from, where it stood alone. A plain valid event
 * (listener/fast_check.ts) whose text is compact JSON, has no `ts`, and has its `id` first or none is not copied:
 * the item itself becomes the record (ts and id added; in memory its keys keep the client's order) and its
 * line ({@link Prepared}) is the client's text with ts (and a new id) spliced in front, so the store writes it
 * without serialising it again.
 */
export function validateRecords(
  items: Record<string, unknown>[],
  ts: string,
  texts?: readonly (string | undefined)[],
): Validated {
  const issues: ItemIssue[] = [];
  const records: Record_[] = new Array(items.length);
  const prep: Prepared = { lines: new Array(items.length), freshIds: new Uint8Array(items.length) };
  for (let index = 0; index < items.length && issues.length < MAX_ISSUES; index++) {
    const item = items[index];
    let data: Record<string, unknown>;
    if (isEventItem(item)) {
      if (isPlainValidEvent(item)) {
        const text = texts?.[index];
        if (text !== undefined && item.ts === undefined) {
          const id = item.id as string | undefined; // a valid id or none: isPlainValidEvent checked it
          const newId = id === undefined ? uuidv7() : undefined;
          const line = lineFrom(text, ts, id, newId);
          if (line !== undefined) {
            const record = item as Record_;
            record.ts = ts;
            if (newId !== undefined) {
              record.id = newId;
              prep.freshIds[index] = 1;
            }
            prep.lines[index] = line;
            records[index] = record;
            continue;
          }
        }
        data = item;
      } else {
        const result = IngestEventSchema.safeParse(item);
        if (!result.success) {
          for (const issue of result.error.issues) {
            issues.push({ index, path: issue.path.join("."), message: issue.message });
          }
          continue;
        }
        data = result.data as Record<string, unknown>;
      }
    } else if ("message" in item) {
      data = item;
    } else {
      issues.push({
        index,
        path: "",
        message:
          "neither a port event (no `event` field: open, close or change) nor a message (no `message` field)",
      });
      continue;
    }
    const id = data.id;
    if (id !== undefined && (typeof id !== "string" || id === "" || id.length > 128)) {
      issues.push({ index, path: "id", message: "id must be a non-empty string of at most 128 characters" });
      continue;
    }
    // ts and id first; one pass over the item's own fields, no intermediate copies.
    const record: Record_ = { ts, id: (id as string | undefined) ?? uuidv7() };
    for (const key in data) {
      if (key !== "id" && key !== "ts") record[key] = data[key];
    }
    if (data.ts !== undefined) record.client_ts = data.ts;
    if (id === undefined) prep.freshIds[index] = 1;
    records[index] = record;
  }
  if (issues.length > 0) throw new ValidationError(issues);
  return { records, prepared: prep };
}

/** {@link validateRecords}'s records alone (for callers that have no texts to write through). */
export function toRecords(
  items: Record<string, unknown>[],
  ts: string,
  texts?: readonly (string | undefined)[],
): Record_[] {
  return validateRecords(items, ts, texts).records;
}
