import assert from "node:assert/strict";
import type { PortEvent } from "../events/schema.ts";
import { parsePolicy } from "./load.ts";
import { BASELINE_RULE, Baselines } from "./baseline.ts";
import { baselinesAsPolicy } from "./baseline_export.ts";
import { learningPolicy, testEvent } from "./testing.ts";

const T0 = Date.parse("2026-12-08T00:00:00Z");
const HOUR = 3600_000;

const LEARNING = parsePolicy(learningPolicy("24h"));

const nginx = (port: number, over: Partial<PortEvent> = {}) =>
  testEvent({ port, image: "nginx:1.25", container_name: "web-1", host: "edge-1", ...over });

Deno.test("baseline: ports seen in the window are expected, a new one after it is an alert; rules come first", () => {
  const b = new Baselines();
  const first = b.judge(LEARNING, nginx(80), T0);
  assert.equal(first.verdict.verdict, "allow");
  assert.equal(first.verdict.rule, BASELINE_RULE);
  assert.match(
    first.verdict.description!,
    /learning image nginx:1.25 on host edge-1 until 2026-12-09T00:00:00.000Z/,
  );
  assert.equal(first.learned?.scopes.length, 1);
  assert.deepEqual(first.learned?.ports.map((p) => p.port), [80]);
  // Seen again in the window: nothing new to persist.
  assert.deepEqual(b.judge(LEARNING, nginx(80), T0 + HOUR).learned, { scopes: [], ports: [] });
  assert.deepEqual(b.judge(LEARNING, nginx(443), T0 + 2 * HOUR).learned?.ports.map((p) => p.port), [443]);

  const after = T0 + 25 * HOUR;
  assert.deepEqual(b.judge(LEARNING, nginx(443), after), {
    verdict: { verdict: "allow", rule: BASELINE_RULE },
  });
  const alert = b.judge(LEARNING, nginx(8080), after);
  assert.equal(alert.verdict.verdict, "alert");
  assert.equal(alert.verdict.severity, "warning");
  assert.match(alert.verdict.description!, /tcp\/8080 was not open in image nginx:1.25 on host edge-1/);
  assert.equal(alert.learned, undefined, "nothing is learned after the window");
  // Another proto is another port.
  assert.equal(b.judge(LEARNING, nginx(80, { proto: "udp" }), after).verdict.verdict, "alert");
  // A rule still decides first, in the window or after it.
  assert.equal(LEARNING.ruleVerdict(nginx(9229))?.rule, "no-node-debugger");
});

Deno.test("baseline: scopes are per image and host; fleet-wide when per: fleet; services; host processes", () => {
  const b = new Baselines();
  b.judge(LEARNING, nginx(80), T0);
  const after = T0 + 25 * HOUR;
  // The same image on another host starts its own window.
  assert.match(b.judge(LEARNING, nginx(8080, { host: "edge-2" }), after).verdict.description!, /learning/);
  // Another image likewise.
  assert.match(
    b.judge(LEARNING, nginx(8080, { image: "nginx:1.27" }), after).verdict.description!,
    /learning/,
  );

  const fleet = parsePolicy("learn: { scope: service, per: fleet, window: 1h }\n");
  const f = new Baselines();
  const svc = { compose_project: "shop", compose_service: "web" };
  f.judge(fleet, nginx(80, svc), T0);
  assert.equal(f.judge(fleet, nginx(80, { ...svc, host: "edge-9" }), T0 + 2 * HOUR).verdict.verdict, "allow");
  assert.equal(f.judge(fleet, nginx(81, { ...svc, host: "edge-9" }), T0 + 2 * HOUR).verdict.verdict, "alert");
  // Not a compose container: per image instead.
  assert.equal(f.scopeOf(fleet, nginx(80, { compose_project: null }))?.key, "image:nginx:1.25@*");
  // The host's own processes are a scope of their own.
  assert.equal(f.scopeOf(fleet, nginx(80, { container_id: null, image: null }))?.kind, "host");
  // A container without an image (an older watcher) is not learned: the default decides.
  assert.deepEqual(
    f.judge(fleet, nginx(80, { image: null, compose_project: null }), T0),
    { verdict: { verdict: "allow", rule: null } },
  );
});

Deno.test("baseline: learn.match limits what is learned; peek does not learn; reset starts over", () => {
  const p = parsePolicy(
    "learn: { window: 1h, match: { proto: tcp } }\ndefault: { action: alert, severity: info }\n",
  );
  const b = new Baselines();
  assert.equal(b.judge(p, nginx(53, { proto: "udp" }), T0).verdict.severity, "info", "udp: the default");
  assert.equal(b.peek(p, nginx(80), T0).verdict, "allow");
  assert.deepEqual(b.list(T0), [], "peek learned nothing");
  b.judge(p, nginx(80), T0);
  assert.deepEqual(b.list(T0).map((s) => [s.key, s.learning, s.ports]), [["image:nginx:1.25@edge-1", true, [
    "tcp/80",
  ]]]);
  assert.deepEqual(b.reset(["nope", "image:nginx:1.25@edge-1"]), ["image:nginx:1.25@edge-1"]);
  assert.equal(b.judge(p, nginx(81), T0 + 2 * HOUR).verdict.verdict, "allow", "learning again after a reset");
});

Deno.test("baseline: merged data keeps the earliest window (replicas that both started one agree)", () => {
  const b = new Baselines();
  const late = b.judge(LEARNING, nginx(80), T0 + HOUR).learned!;
  const other = new Baselines();
  const early = other.judge(LEARNING, nginx(443), T0).learned!;
  b.merge(early);
  b.merge(late);
  const [s] = b.list(T0);
  assert.equal(s.started_at, "2026-12-08T00:00:00.000Z");
  assert.deepEqual(s.ports, ["tcp/80", "tcp/443"]);
});

Deno.test("baseline export: the YAML is a policy that gives the baseline's verdicts", () => {
  const b = new Baselines();
  b.judge(LEARNING, nginx(80), T0);
  b.judge(LEARNING, nginx(443), T0);
  b.judge(LEARNING, nginx(53, { proto: "udp" }), T0);
  b.judge(LEARNING, nginx(22, { container_id: null, image: null, container_name: null }), T0);
  b.judge(LEARNING, nginx(80, { image: "redis:7" }), T0 + 24 * HOUR); // still learning at export time
  const after = T0 + 25 * HOUR;
  const yaml = baselinesAsPolicy(b.list(after), { severity: "critical", at: "now" });
  assert.match(yaml, /still learning, left out: image redis:7 on host edge-1/);
  const exported = parsePolicy(yaml, "export.yaml");
  for (
    const [e, verdict] of [
      [nginx(80), "allow"],
      [nginx(443), "allow"],
      [nginx(53, { proto: "udp" }), "allow"],
      [nginx(53), "alert"],
      [nginx(8080), "alert"],
      [nginx(80, { host: "edge-2" }), "allow"], // another host: not in this export
      [nginx(22, { container_id: null, image: null }), "allow"],
      [nginx(23, { container_id: null, image: null }), "alert"],
    ] as const
  ) {
    assert.equal(exported.verdictOf(e).verdict, verdict, `${e.host} ${e.image} ${e.proto}/${e.port}`);
    if (e.host === "edge-1") assert.equal(b.peek(LEARNING, e, after).verdict, verdict);
  }
  assert.equal(exported.verdictOf(nginx(8080)).severity, "critical");
});
