/**
 * portwatch's event contract and delivery client, the package's entry point (deno.json `exports`): the zod
 * schema of a port event and its types, UUIDv7 ids, the JSON Schema, and the HTTP sink that delivers events to a
 * listener with retries and a durable spool.
 *
 * ```ts
 * import { HttpSink, PortEventSchema, uuidv7 } from "@portwatch/portwatch";
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
export { type EventSink, StdoutSink } from "./sink.ts";
export { type DeliveryStats, HttpSink, type HttpSinkOptions, ingestUrl } from "./http_sink.ts";
export { Spool, SpoolFullError, type SpoolOptions } from "./spool.ts";
export { type DeliveryConfig, deliveryConfigFromEnv, sinkFromEnv } from "./delivery_config.ts";
