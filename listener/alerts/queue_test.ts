import assert from "node:assert/strict";
import { withTempDir } from "../testing.ts";
import { alertOf } from "./alert.ts";
import { FileAlertQueue, type QueuedAlert, retryDelayMs } from "./queue.ts";
import { CRITICAL, openPortFixture } from "./testing.ts";

const item = (port: number, status: "firing" | "resolved" = "firing"): QueuedAlert => {
  const p = openPortFixture({ port });
  return { key: `e${port}|${status}|x`, status, alert: alertOf(p, CRITICAL), port: p, event_id: `e${port}` };
};

Deno.test("queue: retries wait 1 s doubling to 60 s", () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 8, 50].map(retryDelayMs), [
    1000,
    2000,
    4000,
    8000,
    16000,
    32000,
    60000,
    60000,
    60000,
  ]);
});

Deno.test("queue (file): what was enqueued survives closing and opening again, in order, until done", async () => {
  await withTempDir(async (dir) => {
    const first = await FileAlertQueue.open("webhook", `${dir}/webhook`, false);
    const added = await first.enqueue([item(1), item(2), item(3, "resolved")]);
    assert.deepEqual([...added], ["e1|firing|x", "e2|firing|x", "e3|resolved|x"]);
    assert.equal(first.depth(), 3);
    await first.close();

    const second = await FileAlertQueue.open("webhook", `${dir}/webhook`, false);
    assert.equal(second.depth(), 3);
    const claim = await second.claim(2);
    assert.ok(claim && !("waitMs" in claim));
    assert.deepEqual(claim.items.map((i) => i.key), ["e1|firing|x", "e2|firing|x"]);
    assert.deepEqual(claim.items[0], item(1));
    await claim.done();
    assert.equal(second.depth(), 1);
    await second.close();

    const third = await FileAlertQueue.open("webhook", `${dir}/webhook`, false);
    const rest = await third.claim(10);
    assert.ok(rest && !("waitMs" in rest));
    assert.deepEqual(rest.items.map((i) => i.key), ["e3|resolved|x"]);
    // A failure: the head waits for its retry; nothing behind it overtakes it.
    assert.equal(await rest.retry("HTTP 503"), 1000);
    await third.enqueue([item(4)]);
    const waiting = await third.claim(10);
    assert.ok(waiting && "waitMs" in waiting && waiting.waitMs > 0 && waiting.waitMs <= 1000);
    // Refused for good: set aside in dead-letter.ndjson with the reason.
    await third.close();
    const fourth = await FileAlertQueue.open("webhook", `${dir}/webhook`, false);
    const again = await fourth.claim(1);
    assert.ok(again && !("waitMs" in again), "a restart retries at once");
    assert.deepEqual(again.items.map((i) => i.key), ["e3|resolved|x"]);
    await again.dead({ status: 400, error: "HTTP 400: bad alert" });
    const dead = (await Deno.readTextFile(`${dir}/webhook/dead-letter.ndjson`)).trim().split("\n").map((l) =>
      JSON.parse(l)
    );
    assert.deepEqual(dead.map((d) => [d.status, d.error, d.event.key]), [[
      400,
      "HTTP 400: bad alert",
      "e3|resolved|x",
    ]]);
    const last = await fourth.claim(10);
    assert.ok(last && !("waitMs" in last));
    assert.deepEqual(last.items.map((i) => i.key), ["e4|firing|x"]);
    await last.done();
    assert.equal(await fourth.claim(10), undefined);
    await fourth.close();
  });
});
