import assert from "node:assert/strict";
import { NODE_DEBUGGER_POLICY } from "./testing.ts";
import { parsePolicy, PolicyError } from "./load.ts";

const ISSUE_EXAMPLE = NODE_DEBUGGER_POLICY;

/** The error parsePolicy throws for `text`. */
function errorOf(text: string): PolicyError {
  try {
    parsePolicy(text, "p.yaml");
  } catch (e) {
    if (e instanceof PolicyError) return e;
    throw e;
  }
  assert.fail(`no error for:\n${text}`);
}

Deno.test("policy: the issue's example file works as written", () => {
  const policy = parsePolicy(ISSUE_EXAMPLE, "policy.yaml");
  assert.equal(policy.size, 1);
  assert.deepEqual(policy.source.default, "allow");
  assert.deepEqual(policy.source.rules[0].match, { port: "9229", addresses: "any" });
});

Deno.test("policy: an empty file allows everything; defaults may be an alert with a severity", () => {
  assert.equal(parsePolicy("", "empty.yaml").size, 0);
  const p = parsePolicy("default: { action: alert, severity: info }\n");
  assert.deepEqual(p.source.default, { action: "alert", severity: "info" });
});

Deno.test("policy: a bad file names file:line:column and the reason", () => {
  const cases: [string, RegExp, number, number][] = [
    // YAML syntax
    ["rules:\n  - name: a\n    match: { port: 80\n", /^p\.yaml:\d+:\d+: /, 0, 0],
    // an unknown key, where it is
    ["rules:\n  - name: a\n    action: alert\n    match: { prot: tcp }\n", /unknown key\(s\) "prot"/, 4, 12],
    // a bad action value
    ["rules:\n  - name: a\n    action: deny\n", /rules\.0\.action: expected one of "allow", "alert"/, 3, 13],
    // a port out of range, and a range backwards
    [
      'rules:\n  - name: a\n    action: alert\n    match:\n      port: "70000"\n',
      /"70000" is not a port/,
      5,
      13,
    ],
    [
      'rules:\n  - name: a\n    action: alert\n    match: { port: "90-80" }\n',
      /"90-80" is not a port/,
      4,
      20,
    ],
    // an address that is none of any, loopback or an IP
    [
      "rules:\n  - name: a\n    action: alert\n    match: { addresses: everywhere }\n",
      /"everywhere" is not any, loopback/,
      4,
      25,
    ],
    // a missing name
    ["rules:\n  - action: alert\n", /rules\.0\.name/, 2, 5],
    // a severity on an allow rule
    ["rules:\n  - name: a\n    action: allow\n    severity: critical\n", /belongs to an alert rule/, 4, 15],
    // learning: a window that is not a duration, an unknown scope, a bad port in its match
    ["learn:\n  window: 3 days\n", /learn\.window: .*a duration such as 90s, 15m, 24h, 7d or 2w/, 2, 11],
    ["learn: { scope: pod }\n", /learn\.scope: expected one of "image", "service"/, 1, 17],
    ["learn:\n  match: { port: 0-9 }\n", /learn\.match\.port: "0-9" is not a port/, 2, 18],
    // a duplicated key
    ["default: allow\ndefault: alert\n", /^p\.yaml:2:1: .*[Mm]ap keys must be unique/, 2, 1],
  ];
  for (const [text, reason, line, column] of cases) {
    const e = errorOf(text);
    assert.match(e.message, reason, text);
    assert.match(e.message, /^p\.yaml:\d+:\d+: /, text);
    if (line > 0) assert.deepEqual([e.line, e.column], [line, column], `${e.message}\n${text}`);
  }
});
