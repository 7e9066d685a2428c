import assert from "node:assert/strict";
import { IngestEventSchema, PortEventSchema } from "./schema.ts";
import { eventJsonSchema, ingestJsonSchema } from "./json_schema.ts";

const full = {
  id: "0190c8e0-0000-7000-8000-000000000001",
  event: "open",
  port: 5000,
  proto: "tcp",
  family: 4,
  addrs: ["0.0.0.0", "::"],
  pids: [123],
  container_id: "3f4e1c2b9a7d",
  container_name: "web",
  source: "polling",
  observed_at: "2026-11-25T08:00:00.000Z",
  host: "node-1",
  netns: 4026531840,
  process: { pid: 123, comm: "node", cmdline: "node server.js", uid: 1000 },
};

Deno.test("PortEvent: a complete event passes; unknown fields are kept", () => {
  const parsed = PortEventSchema.parse({ ...full, future_field: { x: 1 } });
  assert.equal(parsed.port, 5000);
  assert.deepEqual((parsed as Record<string, unknown>).future_field, { x: 1 });
});

Deno.test("PortEvent: every seed source value is accepted, others are not", () => {
  for (const source of ["polling", "ebpf", "fallback", "shutdown", "shutdown-fallback", "shutdown-ebpf"]) {
    assert.ok(PortEventSchema.safeParse({ ...full, source }).success, source);
  }
  assert.ok(!PortEventSchema.safeParse({ ...full, source: "lsof" }).success);
});

Deno.test("IngestEvent: the seed's own event shape (text pids, no id) is accepted and normalised", () => {
  const seed = {
    event: "close",
    port: "5000",
    pids: "",
    last_pids: "123,456",
    container_id: "abc",
    source: "polling",
  };
  const parsed = IngestEventSchema.parse(seed);
  assert.equal(parsed.port, 5000);
  assert.deepEqual(parsed.pids, []);
  assert.deepEqual(parsed.last_pids, [123, 456]);
  assert.equal(parsed.id, undefined);
});

Deno.test("IngestEvent: bad values are refused with their field path", () => {
  const r = IngestEventSchema.safeParse({ event: "open", port: 70000, pids: [1, -2], source: "polling" });
  assert.ok(!r.success);
  const paths = r.error.issues.map((i) => i.path.join("."));
  assert.deepEqual(paths.sort(), ["pids.1", "port"]);
});

Deno.test("docs/*.schema.json are the JSON Schemas generated from the zod contract (run `deno task schema`)", async () => {
  const docs = new URL("../docs/", import.meta.url);
  assert.deepEqual(
    JSON.parse(await Deno.readTextFile(new URL("event.schema.json", docs))),
    eventJsonSchema(),
  );
  assert.deepEqual(
    JSON.parse(await Deno.readTextFile(new URL("ingest.schema.json", docs))),
    ingestJsonSchema(),
  );
  const props = (eventJsonSchema().properties ?? {}) as Record<string, unknown>;
  for (
    const f of [
      "event",
      "port",
      "pids",
      "last_pids",
      "container_id",
      "container_name",
      "source",
      "id",
      "netns",
    ]
  ) {
    assert.ok(f in props, f);
  }
});

Deno.test("PortEvent: image and compose labels are optional, nullable strings, documented in the JSON Schema", () => {
  const attributed = {
    ...full,
    image: "debian:bookworm",
    compose_project: "portwatch",
    compose_service: "web",
  };
  assert.ok(PortEventSchema.safeParse(attributed).success);
  assert.ok(
    PortEventSchema.safeParse({ ...full, image: null, compose_project: null, compose_service: null }).success,
  );
  assert.ok(!PortEventSchema.safeParse({ ...full, image: 7 }).success);
  assert.ok(
    IngestEventSchema.safeParse({ event: "open", port: 1, source: "polling", compose_service: null }).success,
  );
  const props = (eventJsonSchema() as { properties: Record<string, { description?: string }> }).properties;
  for (const f of ["image", "compose_project", "compose_service"]) assert.ok(props[f]?.description, f);
});
