import assert from "node:assert/strict";
import { checkPolicies } from "./check.ts";

Deno.test("policy check: good files say ok with their rules; a bad one its file:line:column; exit 1", async () => {
  const dir = await Deno.makeTempDir({ prefix: "portwatch-policy-" });
  try {
    await Deno.writeTextFile(
      `${dir}/good.yaml`,
      "rules:\n  - { name: a, match: { port: 22 }, action: alert }\n",
    );
    await Deno.writeTextFile(`${dir}/bad.yaml`, "rules:\n  - name: a\n    action: maybe\n");
    const out: string[] = [], err: string[] = [];
    const push = (to: string[]) => (s: string) => to.push(s);
    assert.equal(await checkPolicies([`${dir}/good.yaml`], push(out), push(err)), 0);
    assert.equal(
      await checkPolicies([`${dir}/good.yaml`, `${dir}/bad.yaml`, `${dir}/none.yaml`], push(out), push(err)),
      1,
    );
    assert.deepEqual(out, [
      `${dir}/good.yaml: ok, 1 rule(s), default allow`,
      `${dir}/good.yaml: ok, 1 rule(s), default allow`,
    ]);
    assert.match(err[0], new RegExp(`^${dir}/bad\\.yaml:3:13: rules\\.0\\.action: expected one of`));
    assert.match(err[1], new RegExp(`^${dir}/none\\.yaml:1:1: cannot read the file`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("policy check: `deno task policy check` runs with the task's permissions", async () => {
  const dir = await Deno.makeTempDir({ prefix: "portwatch-policy-" });
  try {
    await Deno.writeTextFile(`${dir}/bad.yaml`, "rules:\n  - name: x\n    action: deny\n");
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["task", "-q", "policy", "check", `${dir}/bad.yaml`],
      cwd: new URL("..", import.meta.url).pathname,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 1, text);
    assert.match(
      text,
      new RegExp(`${dir}/bad\\.yaml:3:13: rules\\.0\\.action: expected one of "allow", "alert"`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
