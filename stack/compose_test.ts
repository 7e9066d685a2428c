import assert from "node:assert/strict";
import { chooseRuntime, execArgs, findCompose, HF_SETTINGS, upArgs } from "./compose.ts";

Deno.test("chooseRuntime: Docker with an engine and a compose CLI, else namespaces, saying why", () => {
  assert.deepEqual(chooseRuntime(undefined, true, ["docker", "compose"]), { runtime: "docker" });
  assert.deepEqual(chooseRuntime(undefined, true, ["docker-compose"]), { runtime: "docker" });
  assert.deepEqual(chooseRuntime(undefined, false, undefined), { runtime: "netns" });
  const noCli = chooseRuntime(undefined, true, undefined);
  assert.equal(noCli.runtime, "netns");
  assert.match(noCli.notice ?? "", /no compose CLI.*apt-get install docker-compose/);
  assert.deepEqual(chooseRuntime("netns", true, ["docker-compose"]), { runtime: "netns" });
  assert.deepEqual(chooseRuntime("", false, undefined), { runtime: "netns" }, "empty means unset");
});

Deno.test("chooseRuntime: PORTWATCH_RUNTIME=docker without what it needs, or a bad value, is an error", () => {
  assert.throws(() => chooseRuntime("docker", false, undefined), /no Docker engine answers/);
  assert.throws(() => chooseRuntime("docker", true, undefined), /no compose CLI/);
  assert.throws(
    () => chooseRuntime("podman", true, undefined),
    /PORTWATCH_RUNTIME=podman: expected docker .* or netns/,
  );
});

Deno.test("execArgs: spawn detaches, scripts get no TTY, a user when asked", () => {
  assert.deepEqual(execArgs("nodejs-tester", ["node", "-v"], { detached: true, tty: false }), [
    "exec",
    "-d",
    "-T",
    "nodejs-tester",
    "node",
    "-v",
  ]);
  assert.deepEqual(execArgs("python-tester", ["bash"], { detached: false, tty: true }), [
    "exec",
    "python-tester",
    "bash",
  ]);
  assert.deepEqual(execArgs("portwatcher", ["id"], { detached: false, tty: false, user: "root" }), [
    "exec",
    "-T",
    "--user",
    "root",
    "portwatcher",
    "id",
  ]);
});

Deno.test("upArgs: the ebpf profile is a top-level flag, before up (compose rejects it after)", () => {
  assert.deepEqual(upArgs("ebpf"), ["--profile", "ebpf", "up", "-d", "--build"]);
  assert.deepEqual(upArgs("hf"), ["up", "-d", "--build"]);
  assert.deepEqual(HF_SETTINGS, { SCAN_INTERVAL: "1", BURST_SCANS: "5", BURST_DELAY: "0.02" });
});

Deno.test("findCompose: names a CLI that answers `version`, or none", async () => {
  const cli = await findCompose();
  if (cli === undefined) {
    for (const c of [["docker", "compose", "version"], ["docker-compose", "version"]]) {
      const ok = await new Deno.Command(c[0], { args: c.slice(1), stdout: "null", stderr: "null" }).output()
        .then((o) => o.success, () => false);
      assert.equal(ok, false, `${c.join(" ")} answers, yet no CLI was found`);
    }
    return;
  }
  const out = await new Deno.Command(cli[0], { args: [...cli.slice(1), "version"] }).output();
  assert.ok(out.success, `${cli.join(" ")} version answers`);
  assert.match(new TextDecoder().decode(out.stdout), /version/i);
});
