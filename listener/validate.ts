/**
 * Checks parsed items against the event contract and turns them into the records the log stores. A batch is
 * accepted whole or not at all: one bad item rejects it, naming the item, the field and the reason.
 * @module
 */
import { IngestEventSchema } from "../events/schema.ts";
import { uuidv7 } from "../events/id.ts";
import { isPlainValidEvent } from "../events/fast_check.ts";

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

const MAX_ISSUES = 20;

/** True when the item is a port event (it has an `event` field); otherwise it must be a `message`. */
export function isEventItem(item: Record<string, unknown>): boolean {
  return "event" in item;
}

/**
 * Validate every item, then build records stamped with `ts`. Items without an `id` get a new UUIDv7; a
 * client's own `ts` is kept as `client_ts` (the listener's clock is the log's order).
 */
export function toRecords(items: Record<string, unknown>[], ts: string): Record_[] {
  const issues: ItemIssue[] = [];
  const records: Record_[] = new Array(items.length);
  for (let index = 0; index < items.length && issues.length < MAX_ISSUES; index++) {
    const item = items[index];
    let data: Record<string, unknown>;
    if (isEventItem(item)) {
      if (isPlainValidEvent(item)) data = item;
      else {
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
        message: "neither a port event (no `event` field: open or close) nor a message (no `message` field)",
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
    records[index] = record;
  }
  if (issues.length > 0) throw new ValidationError(issues);
  return records;
}
