/**
 * portwatch's delivery client (deno.json `exports` "./delivery"): the sink interface every engine hands its
 * events to, the HTTP sink that POSTs them to a listener with retries and a durable spool, and the settings that
 * choose one from the environment.
 *
 * ```ts
 * import { HttpSink } from "@portwatch/portwatch/delivery";
 * ```
 * @module
 */
export { type EventSink, StdoutSink } from "./sink.ts";
export { type DeliveryStats, HttpSink, type HttpSinkOptions, ingestUrl } from "./http_sink.ts";
export { Spool, SpoolFullError, type SpoolOptions } from "./spool.ts";
export { type DeliveryConfig, deliveryConfigFromEnv, sinkFromEnv } from "./delivery_config.ts";
