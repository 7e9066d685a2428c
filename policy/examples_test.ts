import assert from "node:assert/strict";
import { parsePolicy } from "./load.ts";
import { testEvent } from "./testing.ts";

const here = (p: string) => new URL(p, import.meta.url);

/** The policy YAML blocks of the README's policy section, as users copy them (not Alertmanager's). */
async function readmeBlocks(): Promise<string[]> {
  const readme = await Deno.readTextFile(here("../README.md"));
  const start = readme.indexOf("## Unexpected listeners");
  assert.ok(start >= 0, "the README has its policy section");
  const section = readme.slice(start, readme.indexOf("\n## ", start + 1));
  return [...section.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]).filter((b) =>
    !b.startsWith("# alertmanager.yml")
  );
}

Deno.test("policy examples: the README's YAML blocks and policy/examples/ parse as written", async () => {
  const blocks = await readmeBlocks();
  assert.ok(blocks.length >= 2, "the example and the cookbook");
  for (const [i, text] of blocks.entries()) parsePolicy(text, `README block ${i + 1}`);
  for (const f of Deno.readDirSync(here("./examples/"))) {
    parsePolicy(await Deno.readTextFile(here(`./examples/${f.name}`)), f.name);
  }
});

Deno.test("policy examples: the cookbook decides as it says", async () => {
  const [, cookbook] = await readmeBlocks();
  const p = parsePolicy(cookbook, "cookbook");
  const host = {
    container_id: null,
    container_name: null,
    image: null,
    compose_project: null,
    compose_service: null,
  };
  const cases: [Parameters<typeof testEvent>[0], string | null][] = [
    // databases on loopback only (on hosts)
    [{ ...host, port: 5432, addrs: ["127.0.0.1"] }, "databases-on-loopback"],
    [{ ...host, port: 5432, addrs: ["0.0.0.0"] }, "database-exposed"],
    // no debug ports in production images
    [
      { image: "registry.example.com/prod/api:3", compose_service: "api", port: 9229 },
      "no-debug-ports-in-production",
    ],
    // only 80/443 on the web tier
    [{ image: "nginx:1.27", compose_service: "web", port: 443 }, "web-tier"],
    [{ image: "nginx:1.27", compose_service: "web", port: 8080 }, "web-tier-other-port"],
    // the rest: learned (containers), or the default (a host's own process)
    [{ image: "redis:7", compose_service: "cache", port: 6379 }, null],
    [{ ...host, port: 22 }, null],
  ];
  for (const [over, rule] of cases) {
    const e = testEvent(over);
    assert.equal(p.ruleVerdict(e)?.rule ?? null, rule, JSON.stringify(over));
  }
  assert.equal(p.verdictOf(testEvent({ ...host, port: 5432 })).severity, "critical");
  assert.ok(p.learns(testEvent({ compose_service: "cache", port: 6379 })), "containers are learned");
  assert.ok(!p.learns(testEvent({ ...host, port: 22 })), "a host's own processes are not");
});
