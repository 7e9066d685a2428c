import assert from "node:assert/strict";
import {
  alertLabel,
  alertSummary,
  alertTitle,
  changeText,
  containerLabel,
  countUnexpected,
  describe,
  eventDetail,
  isUnexpected,
  policyAlert,
  unexpectedEvent,
  unexpectedText,
} from "./text.js";
import { PortTable } from "./ports_rule.js";

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

const alerting = (over: Record<string, unknown> = {}) => ({
  policy: { verdict: "alert", rule: "no-node-debugger", severity: "critical", ...over },
});

Deno.test("policyAlert: an alert verdict as the page shows it; allowed, absent or malformed is none", () => {
  assert.deepEqual(policyAlert(alerting({ description: "Node's inspector must not be reachable" })), {
    severity: "critical",
    rule: "no-node-debugger",
    description: "Node's inspector must not be reachable",
  });
  assert.deepEqual(policyAlert(alerting({ rule: null, severity: "bogus" })), {
    severity: null,
    rule: null,
    description: null,
  });
  for (const r of [{}, { policy: null }, { policy: { verdict: "allow", rule: "ok" } }, { policy: "alert" }]) {
    assert.equal(policyAlert(r), null, JSON.stringify(r));
    assert.equal(isUnexpected(r), false);
  }
  assert.equal(isUnexpected(alerting()), true);
});

Deno.test("alert texts: badge, summary, tooltip, the header's count", () => {
  const a = policyAlert(alerting({ description: "debuggers stay on loopback" }))!;
  assert.equal(alertLabel(a), "critical");
  assert.equal(alertSummary(a), "critical, rule no-node-debugger");
  assert.equal(alertTitle(a), "Unexpected (critical, rule no-node-debugger): debuggers stay on loopback");
  const bare = policyAlert({ policy: { verdict: "alert", rule: null } })!;
  assert.equal(alertLabel(bare), "alert");
  assert.equal(alertTitle(bare), "Unexpected (alert, the policy's default)");
  assert.equal(countUnexpected([alerting(), {}, alerting({ severity: "info" }), { policy: null }]), 2);
  assert.equal(countUnexpected([]), 0);
  assert.equal(unexpectedText(0), "No unexpected port open");
  assert.equal(unexpectedText(1), "1 unexpected port open");
  assert.equal(unexpectedText(3), "3 unexpected ports open");
});

Deno.test("describe: an unexpected open or change says so; a close does not", () => {
  const open = { event: "open", port: 9229, proto: "tcp", host: "h", ...alerting() };
  assert.equal(describe(open), "Port 9229/tcp opened on h, unexpected (critical, rule no-node-debugger)");
  assert.equal(
    describe(change(alerting({ severity: "warning" }))),
    "Port 5000/tcp changed in web on node-1, unexpected (warning, rule no-node-debugger): holders 123 → 456",
  );
  assert.equal(describe({ ...open, event: "close" }), "Port 9229/tcp closed on h");
});

Deno.test("unexpectedEvent: opens and changes by their verdict, a close by its port's entry before it", () => {
  const open = { event: "open", port: 9229, proto: "tcp", host: "h", ...alerting() };
  assert.equal(unexpectedEvent(open), true);
  assert.equal(unexpectedEvent(change(alerting())), true);
  assert.equal(unexpectedEvent({ ...open, policy: { verdict: "allow", rule: null } }), false);
  assert.equal(unexpectedEvent({ event: "open", port: 80 }), false, "no policy in force");
  const close = { event: "close", port: 9229, proto: "tcp", host: "h", pids: [], last_pids: [4242] };
  assert.equal(unexpectedEvent(close, open), true, "the port was unexpected when it closed");
  assert.equal(unexpectedEvent(close, { policy: { verdict: "allow", rule: "ok" } }), false);
  assert.equal(unexpectedEvent(close, { policy: null }), false);
  assert.equal(unexpectedEvent(close, undefined), false, "a port not known open");
  assert.equal(unexpectedEvent(close, null), false);
  assert.equal(unexpectedEvent(close), false);
});

Deno.test("unexpectedEvent with the page's table: judged before the close is applied, not after", () => {
  const t = new PortTable();
  const at = { host: "h", container_id: null, netns: 1, proto: "tcp", ts: "t", observed_at: "t" };
  t.apply({ ...at, id: "1", event: "open", port: 9229, ...alerting() });
  t.apply({ ...at, id: "2", event: "open", port: 8080, policy: { verdict: "allow", rule: null } });
  const close = (port: number, id: string) => ({ ...at, id, event: "close", port });
  const debuggerClose = close(9229, "3");
  assert.equal(t.get(debuggerClose)?.event_id, "1");
  assert.equal(unexpectedEvent(debuggerClose, t.get(debuggerClose)), true);
  assert.equal(unexpectedEvent(close(8080, "4"), t.get(close(8080, "4"))), false, "an allowed port");
  assert.equal(t.get({ ...debuggerClose, netns: 2 }), undefined, "another network namespace's port");
  t.apply(debuggerClose);
  assert.equal(t.get(debuggerClose), undefined);
  assert.equal(unexpectedEvent(debuggerClose, t.get(debuggerClose)), false, "too late: the entry is gone");
  // A change that turns a port unexpected counts for its close; one that makes it allowed again does not.
  t.apply({ ...at, id: "5", event: "change", port: 8080, ...alerting({ severity: "warning" }) });
  assert.equal(unexpectedEvent(close(8080, "6"), t.get(close(8080, "6"))), true);
  t.apply({ ...at, id: "7", event: "change", port: 8080, policy: { verdict: "allow", rule: null } });
  assert.equal(unexpectedEvent(close(8080, "8"), t.get(close(8080, "8"))), false);
});
