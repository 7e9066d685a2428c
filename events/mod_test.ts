import assert from "node:assert/strict";
import denoJson from "../deno.json" with { type: "json" };
import * as mod from "./mod.ts";
import { portEventFixture } from "./testing_events.ts";

Deno.test("mod: the package's entry point (deno.json exports) is this file and validates an event", () => {
  assert.equal(denoJson.exports, "./events/mod.ts");
  const event = portEventFixture(8080, { id: mod.uuidv7() });
  assert.equal(mod.PortEventSchema.safeParse(event).success, true);
  assert.equal(mod.PortEventSchema.safeParse({ ...event, port: 0 }).success, false);
  assert.ok(mod.SOURCES.includes("polling"));
  assert.equal(typeof mod.HttpSink.open, "function");
  assert.equal(mod.ingestUrl("http://h:8080").href, "http://h:8080/ingest");
});
