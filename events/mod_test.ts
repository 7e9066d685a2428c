import assert from "node:assert/strict";
import denoJson from "../deno.json" with { type: "json" };
import * as mod from "./mod.ts";
import * as delivery from "../delivery/mod.ts";
import { portEventFixture } from "../testing/events.ts";

Deno.test("mod: the package's entry point (deno.json exports) is this file and validates an event", () => {
  assert.deepEqual(denoJson.exports, { ".": "./events/mod.ts", "./delivery": "./delivery/mod.ts" });
  const event = portEventFixture(8080, { id: mod.uuidv7() });
  assert.equal(mod.PortEventSchema.safeParse(event).success, true);
  assert.equal(mod.PortEventSchema.safeParse({ ...event, port: 0 }).success, false);
  assert.ok(mod.SOURCES.includes("polling"));
});

Deno.test("mod: the contract imports nothing of portwatch's outside events/", async () => {
  for await (const entry of Deno.readDir(new URL(".", import.meta.url))) {
    if (!entry.name.endsWith(".ts") || entry.name.endsWith("_test.ts")) continue;
    const text = await Deno.readTextFile(new URL(entry.name, import.meta.url));
    assert.doesNotMatch(text, /from "\.\.\//, `${entry.name} imports from outside events/`);
  }
});

Deno.test("delivery/mod: the delivery client's entry point", () => {
  assert.equal(typeof delivery.HttpSink.open, "function");
  assert.equal(delivery.ingestUrl("http://h:8080").href, "http://h:8080/ingest");
});
