import assert from "node:assert/strict";
import { waitUntil } from "../infra/wait.ts";
import type { PolicyError } from "./load.ts";
import { PolicyHolder } from "./holder.ts";

const GOOD = (port: number) => `rules:\n  - { name: p${port}, match: { port: ${port} }, action: alert }\n`;

Deno.test("PolicyHolder: follows the file; a bad edit is rejected with its position and the last good stays", async () => {
  const dir = await Deno.makeTempDir({ prefix: "portwatch-policy-" });
  const path = `${dir}/policy.yaml`;
  const rejected: PolicyError[] = [];
  const holder = new PolicyHolder(path, { rejected: (e) => rejected.push(e) }, 20);
  try {
    await Deno.writeTextFile(path, GOOD(22));
    await holder.start();
    assert.equal(holder.policy?.source.rules[0].name, "p22");

    await Deno.writeTextFile(path, GOOD(2375)); // an edit: read again
    await waitUntil("the edit read", () => holder.policy?.source.rules[0].name === "p2375", 5_000);

    await Deno.writeTextFile(path, "rules:\n  - name: x\n    action: deny\n"); // a bad edit: rejected
    await waitUntil("the bad edit rejected", () => rejected.length === 1, 5_000);
    assert.equal(rejected[0].message, `${path}:3:13: rules.0.action: expected one of "allow", "alert"`);
    assert.equal(holder.policy?.source.rules[0].name, "p2375", "the last good policy stays in force");

    // an editor's way: write a new file, rename it over the old one
    await Deno.writeTextFile(`${dir}/.policy.tmp`, GOOD(5432));
    await Deno.rename(`${dir}/.policy.tmp`, path);
    await waitUntil("the replaced file read", () => holder.policy?.source.rules[0].name === "p5432", 5_000);
    assert.equal(holder.counts.rejected, 1);
    assert.ok(holder.counts.loaded >= 3, `loaded ${holder.counts.loaded} times`);
  } finally {
    await holder.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PolicyHolder: SIGHUP reads the file again; a file bad at start leaves no policy until fixed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "portwatch-policy-" });
  const path = `${dir}/policy.yaml`;
  const holder = new PolicyHolder(path, {}, 10_000); // looked at every 10 s: only SIGHUP reads it in time
  try {
    await Deno.writeTextFile(path, "rules: [");
    await holder.start();
    assert.equal(holder.policy, undefined);
    assert.equal(holder.counts.rejected, 1);
    await Deno.writeTextFile(path, GOOD(9229));
    Deno.kill(Deno.pid, "SIGHUP");
    await waitUntil("SIGHUP read the file", () => holder.policy?.source.rules[0].name === "p9229", 5_000);
  } finally {
    await holder.close();
    await Deno.remove(dir, { recursive: true });
  }
});
