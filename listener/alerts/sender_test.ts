import assert from "node:assert/strict";
import { getLogger } from "@logtape/logtape";
import { waitUntil } from "../../infra/wait.ts";
import { withTempDir } from "../testing.ts";
import { alertOf, type WebhookPayload } from "./alert.ts";
import { FileAlertQueue, type QueuedAlert } from "./queue.ts";
import { Sender } from "./sender.ts";
import { displayUrl, outcomeOf } from "./target.ts";
import { WebhookTarget } from "./webhook.ts";
import { captureTarget, CRITICAL, openPortFixture } from "./testing.ts";

const item = (port: number): QueuedAlert => {
  const p = openPortFixture({ port });
  return {
    key: `e${port}|firing|x`,
    status: "firing",
    alert: alertOf(p, CRITICAL),
    port: p,
    event_id: `e${port}`,
  };
};

Deno.test("target: 2xx delivered; 408, 429, 5xx and redirects retried; other 4xx refused for good", () => {
  assert.deepEqual(outcomeOf(200, ""), { kind: "ok" });
  assert.deepEqual(outcomeOf(204, ""), { kind: "ok" });
  for (const s of [408, 429, 500, 502, 503, 301]) assert.equal(outcomeOf(s, "x").kind, "retry", String(s));
  for (const s of [400, 401, 404, 413, 422]) assert.equal(outcomeOf(s, "x").kind, "dead", String(s));
  assert.deepEqual(outcomeOf(400, '{"error":"bad"}\n'), {
    kind: "dead",
    status: 400,
    error: 'HTTP 400: {"error":"bad"}',
  });
  assert.equal(displayUrl("https://u:secret@hooks.example.com/x?token=1"), "https://hooks.example.com/x");
});

Deno.test("sender: a refused alert is set aside once, not retried; those behind it are sent; credentials as basic auth", async () => {
  await withTempDir(async (dir) => {
    const hook = captureTarget(400);
    const queue = await FileAlertQueue.open("webhook", `${dir}/webhook`, false);
    const failed: number[] = [];
    const sender = new Sender({
      queue,
      target: new WebhookTarget(hook.url.replace("http://", "http://pw:s%40cret@")),
      log: getLogger(["portwatch", "alerts", "test"]),
      hooks: { failed: () => failed.push(1) },
    });
    try {
      await queue.enqueue([item(1)]);
      sender.wake();
      await waitUntil("the refused POST", () => hook.received.length === 1);
      await waitUntil("the item set aside", () => queue.depth() === 0);
      hook.status = 200;
      await queue.enqueue([item(2)]);
      sender.wake();
      await waitUntil("the next item delivered", () => hook.received.length === 2);
      assert.deepEqual(hook.received.map((r) => [r.status, (r.body as WebhookPayload).event_id]), [[
        400,
        "e1",
      ], [200, "e2"]]);
      assert.equal(hook.received[0].authorization, `Basic ${btoa("pw:s@cret")}`);
      assert.equal(failed.length, 1);
      const dead = await Deno.readTextFile(`${dir}/webhook/dead-letter.ndjson`);
      assert.match(dead, /"status":400/);
      assert.match(dead, /scripted 400/);
    } finally {
      await sender.close();
      await queue.close();
      await hook.close();
    }
  });
});
