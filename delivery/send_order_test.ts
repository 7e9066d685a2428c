import assert from "node:assert/strict";
import { MAX_IN_FLIGHT, SendOrder } from "./send_order.ts";
import type { PortEvent } from "../events/schema.ts";
import { portEventFixture } from "../testing/events.ts";

const ev = (port: number, over: Partial<PortEvent> = {}) =>
  portEventFixture(port, { source: "ebpf", ...over });

/** A send the test finishes by hand, recording when it started. */
function manual(log: string[], name: string) {
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  return {
    finish,
    start: () => {
      log.push(`start ${name}`);
      return done.then(() => log.push(`end ${name}`)).then(() => name);
    },
  };
}

/** One macrotask turn: lets the queued promise callbacks run (no time has to pass). */
const tick = () => new Promise((r) => setTimeout(r, 0));

Deno.test("SendOrder: sends about other ports start at once; one about the same port waits for it", async () => {
  const order = new SendOrder();
  const log: string[] = [];
  const a = manual(log, "a"), b = manual(log, "b"), c = manual(log, "c");
  const pa = order.enter([ev(1), ev(2)], false, a.start);
  const pb = order.enter([ev(3)], false, b.start);
  const pc = order.enter([ev(4), ev(2, { event: "close" })], false, c.start); // port 2 again: after a
  await tick();
  assert.deepEqual(log, ["start a", "start b"]);
  b.finish();
  assert.equal(await pb, "b");
  assert.deepEqual(log, ["start a", "start b", "end b"], "b done while a is on the wire");
  a.finish();
  await pa;
  await tick();
  assert.deepEqual(log.slice(3), ["end a", "start c"], "c only after a");
  c.finish();
  assert.equal(await pc, "c");
  await order.settled();
  assert.equal(order.size, 0);
});

Deno.test("SendOrder: the same port in another namespace, protocol or container is another port", async () => {
  const order = new SendOrder(10);
  const log: string[] = [];
  const a = manual(log, "a");
  const others = [
    ev(1, { netns: 2 }),
    ev(1, { proto: "udp" }),
    ev(1, { container_id: "x" }),
    ev(1, { host: "g" }),
  ];
  const pa = order.enter([ev(1)], false, a.start);
  const rest = others.map((e, i) => order.enter([e], false, () => Promise.resolve(i)));
  assert.deepEqual(await Promise.all(rest), [0, 1, 2, 3], "none waited for a");
  a.finish();
  await pa;
});

Deno.test("SendOrder: in order (spooling or failing), a send waits for every earlier one", async () => {
  const order = new SendOrder();
  const log: string[] = [];
  const a = manual(log, "a"), b = manual(log, "b");
  const pa = order.enter([ev(1)], false, a.start);
  const pb = order.enter([ev(2)], true, b.start);
  await tick();
  assert.deepEqual(log, ["start a"]);
  a.finish();
  await pa;
  await tick();
  assert.deepEqual(log, ["start a", "end a", "start b"]);
  b.finish();
  await pb;
});

Deno.test("SendOrder: at most MAX_IN_FLIGHT on the wire; a failed send does not hold up its port", async () => {
  const order = new SendOrder();
  const log: string[] = [];
  const sends = Array.from({ length: MAX_IN_FLIGHT + 1 }, (_, i) => manual(log, String(i)));
  const runs = sends.map((s, i) => order.enter([ev(100 + i)], false, s.start));
  await tick();
  assert.equal(log.length, MAX_IN_FLIGHT, "the last one waits for the oldest");
  sends[0].finish();
  await runs[0];
  await tick();
  assert.ok(log.includes(`start ${MAX_IN_FLIGHT}`), "a slot freed");
  for (const s of sends) s.finish();
  await Promise.all(runs);
  await assert.rejects(order.enter([ev(7)], false, () => Promise.reject(new Error("boom"))), /boom/);
  assert.equal(await order.enter([ev(7)], false, () => Promise.resolve("ok")), "ok");
  await order.settled();
  assert.equal(order.size, 0);
});
