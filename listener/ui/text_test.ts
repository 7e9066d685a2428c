import assert from "node:assert/strict";
import { changeText, containerLabel, describe, eventDetail } from "./text.js";

const change = (over: Record<string, unknown>) => ({
  event: "change",
  port: 5000,
  proto: "tcp",
  host: "node-1",
  container_name: "/web",
  addrs: ["0.0.0.0"],
  last_addrs: ["0.0.0.0"],
  pids: [456],
  last_pids: [123],
  ...over,
});

Deno.test("changeText: holders before → now, and addresses when they changed", () => {
  assert.equal(changeText(change({})), "holders 123 → 456");
  assert.equal(changeText(change({ pids: [123, 456] })), "holders 123 → 123, 456");
  assert.equal(changeText(change({ pids: [], last_pids: [123] })), "holders 123 → none");
  assert.equal(
    changeText(change({ pids: [123], addrs: ["0.0.0.0", "::"] })),
    "addresses 0.0.0.0 → 0.0.0.0, ::",
  );
  assert.equal(
    changeText(change({ addrs: ["::"] })),
    "holders 123 → 456; addresses 0.0.0.0 → ::",
  );
  // The same holders in another order did not change; a change without before-values does not guess them.
  assert.equal(changeText(change({ pids: [2, 1], last_pids: [1, 2] })), "holders 2, 1");
  assert.equal(changeText(change({ last_pids: undefined, last_addrs: undefined })), "holders now 456");
});

Deno.test("eventDetail and describe: opens, closes and changes in words", () => {
  const proc = { comm: "node", cmdline: "node server.js", uid: 0 };
  assert.equal(eventDetail({ event: "open", pids: [7], process: proc }), "node pid 7");
  assert.equal(eventDetail({ event: "close", pids: [], last_pids: [7] }), "was pid 7");
  assert.equal(eventDetail({ event: "close", pids: [] }), "");
  assert.equal(eventDetail(change({ process: proc })), "node holders 123 → 456");
  assert.equal(describe({ event: "open", port: 80, proto: "tcp", host: "h" }), "Port 80/tcp opened on h");
  assert.equal(
    describe(change({})),
    "Port 5000/tcp changed in web on node-1: holders 123 → 456",
  );
  assert.equal(
    describe({ event: "close", port: 53, container_id: "3f4e1c2b9a7d0011" }),
    "Port 53/? closed in 3f4e1c2b9a7d",
  );
  assert.equal(containerLabel({ container_name: null, container_id: null }), null);
});
