/** Writes docs/event.schema.json and docs/ingest.schema.json from the zod contract (`deno task schema`). */
import { eventJsonSchema, ingestJsonSchema } from "./json_schema.ts";

if (import.meta.main) {
  await Deno.writeTextFile("docs/event.schema.json", JSON.stringify(eventJsonSchema(), null, 2) + "\n");
  await Deno.writeTextFile("docs/ingest.schema.json", JSON.stringify(ingestJsonSchema(), null, 2) + "\n");
  console.log("wrote docs/event.schema.json and docs/ingest.schema.json");
}
