import assert from "node:assert/strict";
import type { PortEvent } from "../events/schema.ts";
import { parsePolicy } from "./load.ts";
import { benchEvents, benchPolicyYaml, DEBUGGER_RULE, intendedRule, METRICS_RULE } from "./bench_policy.ts";

const asEvent = (e: ReturnType<typeof benchEvents>[number], i: number) =>
  ({ id: `e${i}`, ...e }) as PortEvent;

Deno.test("bench policy: 1,000 rules parse, every match field is used, the last two are the matching ones", () => {
  const policy = parsePolicy(benchPolicyYaml(1000), "bench.yaml");
  assert.equal(policy.size, 1000);
  const fields = new Set(policy.source.rules.flatMap((r) => Object.keys(r.match)));
  const all = [
    "host",
    "container",
    "container_id",
    "image",
    "compose_project",
    "compose_service",
    "proto",
    "port",
    "addresses",
    "comm",
    "exe",
    "uid",
  ];
  assert.deepEqual([...fields].sort(), [...all].sort());
  assert.deepEqual(policy.source.rules.slice(-2).map((r) => r.name), [DEBUGGER_RULE, METRICS_RULE]);
  assert.equal(new Set(policy.source.rules.map((r) => r.name)).size, 1000, "names are unique");
  assert.equal(parsePolicy(benchPolicyYaml(2)).size, 2);
  assert.throws(() => benchPolicyYaml(1), RangeError);
});

Deno.test("bench policy: opens walk every rule to the default, or meet the intended rule; closes are events too", () => {
  const policy = parsePolicy(benchPolicyYaml(1000), "bench.yaml");
  const events = benchEvents(1000);
  assert.equal(events.filter((e) => e.event === "open").length, 500);
  const seen = new Map<string | null, number>();
  for (const [i, e] of events.entries()) {
    if (e.event !== "open") continue;
    const v = policy.verdictOf(asEvent(e, i));
    assert.equal(v.rule, intendedRule(e), `event ${i} (port ${e.port}, ${e.addrs})`);
    seen.set(v.rule, (seen.get(v.rule) ?? 0) + 1);
  }
  assert.deepEqual(Object.fromEntries(seen), { null: 400, [DEBUGGER_RULE]: 50, [METRICS_RULE]: 50 });
  const open = asEvent(events[0], 0);
  assert.deepEqual(policy.verdictOf(open), { verdict: "allow", rule: null });
  assert.deepEqual(policy.verdictOf(asEvent(events[6], 6)), {
    verdict: "alert",
    rule: DEBUGGER_RULE,
    severity: "critical",
    description: "a Node debugger reachable from outside",
  });
});

/** A seeded PRNG (mulberry32): the same events every run. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test("policy match: the indexed verdict is the rule-by-rule one, for events near and far from every rule", () => {
  const policy = parsePolicy(benchPolicyYaml(1000), "bench.yaml");
  const rnd = random(19);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const rules = policy.source.rules.map((r) => r.match);
  const globOf = (
    k:
      | "host"
      | "container"
      | "container_id"
      | "image"
      | "compose_project"
      | "compose_service"
      | "comm"
      | "exe",
  ) => {
    const m = pick(rules)[k];
    return m === undefined ? undefined : pick([m].flat()).replaceAll("*", pick(["", "x", "-7"]));
  };
  const bench = benchEvents(1000);
  for (let i = 0; i < 20_000; i++) {
    const e = { ...asEvent(pick(bench), i) } as PortEvent & Record<string, unknown>;
    const vary = (k: string, v: unknown) => {
      if (rnd() < 0.35) e[k] = v;
    };
    vary("host", globOf("host") ?? "edge-1");
    vary("container_name", rnd() < 0.2 ? null : globOf("container"));
    vary("container_id", rnd() < 0.2 ? null : globOf("container_id"));
    vary("image", rnd() < 0.2 ? undefined : globOf("image"));
    vary("compose_project", rnd() < 0.2 ? null : globOf("compose_project"));
    vary("compose_service", globOf("compose_service"));
    vary("proto", pick(["tcp", "udp"]));
    vary(
      "port",
      rnd() < 0.5 ? 1 + Math.floor(rnd() * 65535) : pick([22, 53, 443, 5353, 8050, 9229, 9150, 20012]),
    );
    vary(
      "addrs",
      pick([["0.0.0.0"], ["127.0.0.1"], ["::1", "127.0.0.1"], ["0.0.0.0", "::"], [], ["10.0.5.1"], ["::"]]),
    );
    vary(
      "process",
      rnd() < 0.3 ? undefined : {
        comm: globOf("comm") ?? "node",
        cmdline: `${globOf("exe") ?? "/usr/bin/node"} --flag`,
        uid: pick([0, 1000, 2006, 3018, 2042]),
      },
    );
    assert.deepEqual(policy.ruleVerdict(e), policy.ruleVerdictInTurn(e), JSON.stringify(e));
  }
});

Deno.test("policy match: the indexed verdict is the rule-by-rule one, for random small policies", () => {
  const rnd = random(7);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const values: Record<string, unknown[]> = {
    host: ["a*", "node-1", "*", ["db-*", "node-?"]],
    container: ["web-*", "api"],
    container_id: ["ab*", "c0ffee"],
    image: ["nginx:*", "redis:7"],
    compose_project: ["shop"],
    compose_service: ["api", ["web", "worker"]],
    proto: ["tcp", "udp"],
    port: [22, "5000-5010", "80,443", [8080, "9000-9001"]],
    addresses: ["any", "loopback", "10.0.0.1", ["loopback", "::"]],
    comm: ["node", "sh*"],
    exe: ["/usr/bin/*", "/bin/sh"],
    uid: [0, [1000, 33]],
  };
  const keys = Object.keys(values);
  for (let p = 0; p < 300; p++) {
    const n = 1 + Math.floor(rnd() * 70);
    let yaml = "rules:\n";
    for (let i = 0; i < n; i++) {
      const match: Record<string, unknown> = {};
      for (let f = Math.floor(rnd() * 4); f > 0; f--) {
        const k = pick(keys);
        match[k] = pick(values[k]);
      }
      yaml += `  - { name: r${i}, match: ${JSON.stringify(match)}, action: ${pick(["allow", "alert"])} }\n`;
    }
    const policy = parsePolicy(yaml, `random-${p}.yaml`);
    for (let i = 0; i < 200; i++) {
      const e = {
        id: `e${i}`,
        event: "open",
        port: pick([22, 80, 443, 5005, 5011, 8080, 9001, 3000]),
        proto: pick(["tcp", "udp"]),
        family: 4,
        addrs: pick([["0.0.0.0"], ["127.0.0.1"], ["::1", "127.0.0.1"], ["::"], [], ["10.0.0.1", "0.0.0.0"]]),
        pids: [1],
        container_id: pick([null, "abcdef", "c0ffee", ""]),
        container_name: pick([null, "web-1", "api"]),
        image: pick([undefined, null, "nginx:1.27", "redis:7"]),
        compose_project: pick([undefined, "shop", "blog"]),
        compose_service: pick([undefined, "api", "web", "worker"]),
        source: "ebpf",
        observed_at: "2026-12-08T00:00:00.000Z",
        host: pick(["a1", "node-1", "node-x", "db-2"]),
        netns: 1,
        process: rnd() < 0.2 ? undefined : {
          comm: pick(["node", "sh", "bash"]),
          cmdline: pick(["/usr/bin/node app.js", "/bin/sh", "/bin/sh -c x", "sh"]),
          uid: pick([0, 33, 1000]),
        },
      } as PortEvent;
      assert.deepEqual(policy.ruleVerdict(e), policy.ruleVerdictInTurn(e), `${yaml}\n${JSON.stringify(e)}`);
    }
  }
});
