/**
 * `deno bench --allow-all listener/ingest_bench.ts`: the per-request CPU work of POST /ingest without HTTP:
 * reading the body, validating, and storing (fsync off, to a temp file).
 * @module
 */
import { parseBody } from "./parse_body.ts";
import { toRecords, validateRecords } from "./validate.ts";
import { EventStore } from "./file/store.ts";

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
const ONE = parseBody(SINGLE, "application/json");
const HUNDRED = parseBody(NDJSON, "application/x-ndjson");
const TS = "2026-11-25T08:00:00.000Z";
if (HUNDRED.items.length !== 100 || toRecords(HUNDRED.items, TS, HUNDRED.texts).length !== 100) {
  throw new Error("the NDJSON fixture does not parse to 100 valid events");
}

Deno.bench({ name: "parseBody: 1 event (JSON)", group: "parseBody", baseline: true }, () => {
  parseBody(SINGLE, "application/json");
});

Deno.bench({ name: "parseBody: 100 events (NDJSON)", group: "parseBody" }, () => {
  parseBody(NDJSON, "application/x-ndjson");
});

Deno.bench({ name: "toRecords: 1 event, written through", group: "toRecords", baseline: true }, () => {
  toRecords(parseBody(SINGLE, "application/json").items, TS, ONE.texts);
});

Deno.bench({ name: "toRecords: 100 events, written through", group: "toRecords" }, () => {
  const { items, texts } = parseBody(NDJSON, "application/x-ndjson");
  toRecords(items, TS, texts);
});

Deno.bench({ name: "toRecords: 100 events, serialised (no texts)", group: "toRecords" }, () => {
  toRecords(parseBody(NDJSON, "application/x-ndjson").items, TS);
});

const dir = await Deno.makeTempDir({ prefix: "portwatch_ingest_bench_" });
const { store } = await EventStore.open({
  path: `${dir}/bench.log`,
  fsync: false,
  maxBytes: 64 * 1024 * 1024,
  keep: 1,
  dedupeWindow: 200_000,
  recentSize: 10_000,
});
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

Deno.bench({ name: "parse, validate, store: 1 event", group: "ingest", baseline: true }, async () => {
  const { items, texts } = parseBody(SINGLE, "application/json");
  const { records, prepared } = validateRecords(items, new Date().toISOString(), texts);
  await store.ingest(records, prepared);
});

Deno.bench({ name: "parse, validate, store: 100 events (NDJSON)", group: "ingest" }, async () => {
  const { items, texts } = parseBody(NDJSON, "application/x-ndjson");
  const { records, prepared } = validateRecords(items, new Date().toISOString(), texts);
  await store.ingest(records, prepared);
});
