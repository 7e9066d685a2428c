/**
 * Turns a POST /ingest body into items: one JSON value, a JSON array, NDJSON lines, or (as the seed did) any
 * other text stored as `{"message": ...}`. Pure: bytes in, items or a {@link BodyError} out.
 * @module
 */
import { locateJsonError } from "./json_error.ts";
import { utf8Length } from "../infra/utf8.ts";

/** A body that cannot be read as events; `status` is the HTTP status to answer with. */
export class BodyError extends Error {
  constructor(
    readonly status: 400 | 415 | 422,
    message: string,
    readonly detail: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = "BodyError";
  }
}

/** How the body was read. */
export type BodyKind = "json" | "ndjson" | "text";

/** The items of a body, each a JSON object (non-object JSON values come wrapped as `{message}`). */
export interface ParsedBody {
  kind: BodyKind;
  items: Record<string, unknown>[];
  /**
   * The text each item was parsed from, when it stood alone (an NDJSON line without its line end, or a body
   * that is one JSON object, trimmed), else undefined; the store may write such text through instead of
   * serialising the item again (see validate.ts).
   */
  texts?: (string | undefined)[];
}

const NDJSON_TYPES = new Set([
  "application/x-ndjson",
  "application/ndjson",
  "application/jsonl",
  "application/x-jsonlines",
  "application/jsonlines",
  "application/json-lines",
]);

/** The media type of a Content-Type header, lower case, without parameters. */
export function mediaType(contentType: string | null | undefined): string {
  return (contentType ?? "").split(";")[0].trim().toLowerCase();
}

function isJsonType(type: string): boolean {
  return type === "application/json" || type.endsWith("+json");
}

function asItem(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value)
    ? value as Record<string, unknown>
    : { message: value };
}

/** Read `text` (the decoded body) as the items it carries, according to its Content-Type. */
export function parseBody(text: string, contentType: string | null | undefined): ParsedBody {
  const type = mediaType(contentType);
  if (text.trim() === "") {
    throw new BodyError(400, "empty body: send a JSON event, a JSON array of events, or NDJSON lines");
  }
  if (NDJSON_TYPES.has(type)) {
    const texts: string[] = [];
    return { kind: "ndjson", items: parseNdjson(text, texts), texts };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    if (!isJsonType(type)) return { kind: "text", items: [{ message: text }] };
    const at = locateJsonError(text, error);
    throw new BodyError(
      400,
      `malformed JSON at byte ${at.byteOffset} (line ${at.line}, column ${at.column}): ${at.reason}`,
      { byte_offset: at.byteOffset, line: at.line, column: at.column },
    );
  }
  if (Array.isArray(value)) {
    value.forEach((v, index) => {
      if (v === null || typeof v !== "object" || Array.isArray(v)) {
        throw new BodyError(422, `item ${index} of the array is not a JSON object`, { index });
      }
    });
    return { kind: "json", items: value as Record<string, unknown>[] };
  }
  const item = asItem(value);
  return { kind: "json", items: [item], texts: item === value ? [text.trim()] : undefined };
}

/**
 * NDJSON: one JSON object per line; blank lines are skipped; the first bad line rejects the whole body. When
 * `texts` is given, the text of each item's line (without "\r\n" or "\n") is pushed to it, item for item.
 */
export function parseNdjson(text: string, texts?: string[]): Record<string, unknown>[] {
  const items: Record<string, unknown>[] = [];
  let start = 0;
  let lineNo = 0;
  while (start < text.length) {
    let end = text.indexOf("\n", start);
    if (end === -1) end = text.length;
    lineNo++;
    const line = text.slice(start, end);
    if (line.trim() !== "") {
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch (error) {
        const at = locateJsonError(line, error);
        const byteOffset = utf8Length(text.slice(0, start)) + at.byteOffset;
        throw new BodyError(
          400,
          `malformed JSON on NDJSON line ${lineNo} at byte ${byteOffset} (column ${at.column}): ${at.reason}`,
          { byte_offset: byteOffset, line: lineNo, column: at.column, index: items.length },
        );
      }
      if (value === null || typeof value !== "object" || Array.isArray(value)) {
        throw new BodyError(422, `NDJSON line ${lineNo} is not a JSON object`, {
          line: lineNo,
          index: items.length,
        });
      }
      items.push(value as Record<string, unknown>);
      texts?.push(line.charCodeAt(line.length - 1) === 13 ? line.slice(0, -1) : line);
    }
    start = end + 1;
  }
  return items;
}
