/**
 * portwatch's event contract, the package's entry point (deno.json `exports` "."): the zod schema of a port
 * event and its types, UUIDv7 ids and the JSON Schema. It imports nothing of portwatch's; the delivery client
 * (HTTP sink, spool) is `@portwatch/portwatch/delivery` (delivery/mod.ts).
 *
 * ```ts
 * import { PortEventSchema, uuidv7 } from "@portwatch/portwatch";
 * ```
 * @module
 */
export {
  EVENT_KINDS,
  type EventKind,
  type IngestEvent,
  IngestEventSchema,
  type PortEvent,
  PortEventSchema,
  type ProcessInfo,
  ProcessSchema,
  type Proto,
  PROTOS,
  type Source,
  SOURCES,
  type StoredRecord,
} from "./schema.ts";
export { uuidv7, uuidv7Time } from "./id.ts";
export { eventJsonSchema, ingestJsonSchema } from "./json_schema.ts";
