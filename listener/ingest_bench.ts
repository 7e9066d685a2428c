/** `deno bench listener/ingest_bench.ts`: the per-request CPU work of POST /ingest, without HTTP or disk. */
import { parseBody } from "./parse_body.ts";
import { toRecords } from "./validate.ts";

const EVENT = {
  event: "open",
  port: 5000,
  pids: [123],
  container_id: "abc123",
  container_name: "web",
  source: "polling",
  proto: "tcp",
  family: 4,
  addrs: ["0.0.0.0"],
  host: "h1",
  netns: 4026531840,
  observed_at: "2026-11-25T07:53:56.285Z",
};
const SINGLE = JSON.stringify(EVENT);
const NDJSON = Array.from({ length: 100 }, (_, i) => JSON.stringify({ ...EVENT, port: 5000 + i }) + "\n")
  .join("");
const ONE_ITEM = parseBody(SINGLE, "application/json").items;
const HUNDRED_ITEMS = parseBody(NDJSON, "application/x-ndjson").items;
const TS = "2026-11-25T08:00:00.000Z";
if (HUNDRED_ITEMS.length !== 100 || toRecords(HUNDRED_ITEMS, TS).length !== 100) {
  throw new Error("the NDJSON fixture does not parse to 100 valid events");
}

Deno.bench({ name: "parseBody: 1 event (JSON)", group: "parseBody", baseline: true }, () => {
  parseBody(SINGLE, "application/json");
});

Deno.bench({ name: "parseBody: 100 events (NDJSON)", group: "parseBody" }, () => {
  parseBody(NDJSON, "application/x-ndjson");
});

Deno.bench({ name: "toRecords: 1 event", group: "toRecords", baseline: true }, () => {
  toRecords(ONE_ITEM, TS);
});

Deno.bench({ name: "toRecords: 100 events", group: "toRecords" }, () => {
  toRecords(HUNDRED_ITEMS, TS);
});
