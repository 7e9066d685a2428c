/** JSON Schema documents generated from the zod contract (served at GET /schema, checked in under docs/). */
import { z } from "zod";
import { IngestEventSchema, PortEventSchema } from "./schema.ts";

/** JSON Schema (draft 2020-12) of {@link PortEventSchema}: what portwatch engines emit. */
export function eventJsonSchema(): Record<string, unknown> {
  return { $id: "urn:portwatch:schema:port-event:1", ...z.toJSONSchema(PortEventSchema) };
}

/** JSON Schema of {@link IngestEventSchema}: what POST /ingest accepts (input side). */
export function ingestJsonSchema(): Record<string, unknown> {
  return {
    $id: "urn:portwatch:schema:ingest-event:1",
    ...z.toJSONSchema(IngestEventSchema, { io: "input", unrepresentable: "any" }),
  };
}
