import assert from "node:assert/strict";
import { run, skipIf } from "./netns.ts";
import { denoForUser, modesAllowExec, NOBODY, runsAs } from "./user_deno.ts";

/** Root and setpriv are needed to drop to nobody. */
function setprivReason(): string | undefined {
  if (Deno.build.os !== "linux") return `setpriv needs Linux, this is ${Deno.build.os}`;
  if (Deno.uid() !== 0) return `not root (uid ${Deno.uid()}): only root can start a process as nobody`;
  try {
    new Deno.Command("setpriv", { args: ["--version"], stdout: "null", stderr: "null" }).outputSync();
    return undefined;
  } catch {
    return "util-linux's setpriv is not installed";
  }
}

const exists = (path: string) => {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
};

Deno.test("modesAllowExec: every directory down to the file must be searchable, the file readable and executable", () => {
  const dir = Deno.makeTempDirSync({ prefix: "pwtest-modes-" });
  try {
    Deno.chmodSync(dir, 0o755);
    Deno.mkdirSync(`${dir}/sub`);
    const file = `${dir}/sub/prog`;
    Deno.writeTextFileSync(file, "#!/bin/sh\n");
    const me = { uid: Deno.uid() ?? 0, gid: Deno.gid() ?? 0 };
    // a user that owns nothing here: "other" bits apply
    const stranger = me.uid === 0 ? NOBODY : { uid: me.uid + 1, gid: me.gid + 1 };
    const cases: [number, number, boolean][] = [
      [0o755, 0o755, true],
      [0o700, 0o755, false], // the directory is not searchable: npx's cache under /root
      [0o711, 0o755, true], // searchable is enough
      [0o755, 0o750, false], // neither readable nor executable by others
      [0o755, 0o751, false], // executable but not readable: deno must read itself
      [0o755, 0o754, false],
    ];
    for (const [dirMode, fileMode, want] of cases) {
      Deno.chmodSync(`${dir}/sub`, dirMode);
      Deno.chmodSync(file, fileMode);
      const what = `dir ${dirMode.toString(8)}, file ${fileMode.toString(8)}`;
      assert.equal(modesAllowExec(file, stranger), want, what);
    }
    // the owner's bits apply to the owner, and root may do anything
    Deno.chmodSync(`${dir}/sub`, 0o700);
    Deno.chmodSync(file, 0o700);
    assert.equal(modesAllowExec(file, me), true);
    assert.equal(modesAllowExec(file, { uid: 0, gid: 0 }), true);
    assert.equal(modesAllowExec(`${dir}/missing`, stranger), false);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test({
  name: "denoForUser: a deno nobody cannot reach is copied out (0755), runs as nobody, and is removed after",
  ignore: skipIf(setprivReason(), "denoForUser copy"),
  async fn() {
    // a stand-in for npx's cache: the binary itself is 0755, its directory 0700 and root's
    const hidden = await Deno.makeTempDir({ prefix: "pwtest-hidden-" });
    try {
      await Deno.chmod(hidden, 0o700);
      const original = `${hidden}/deno`;
      await Deno.copyFile(Deno.execPath(), original);
      await Deno.chmod(original, 0o755);
      assert.equal(modesAllowExec(original), false);
      assert.match((await runsAs(original)) ?? "", /Permission denied/);

      let dir: string;
      {
        await using deno = await denoForUser({ execPath: original });
        dir = deno.dir;
        assert.equal(deno.copied, true);
        assert.notEqual(deno.path, original);
        assert.equal((await Deno.stat(deno.path)).mode! & 0o777, 0o755);
        assert.equal(modesAllowExec(deno.path), true);
        // the user's home is its own and writable: deno caches there
        const r = await run(
          deno.command([
            "eval",
            "await Deno.writeTextFile(Deno.env.get('HOME') + '/x', 'y'); console.log(Deno.uid())",
          ]),
          { timeoutMs: 30_000 },
        );
        assert.equal(r.stdout.trim(), String(NOBODY.uid));
        assert.equal(await Deno.readTextFile(`${deno.home}/x`), "y");
      }
      assert.equal(exists(dir), false, `${dir} is removed at the end of the scope`);

      // also when the test fails
      await assert.rejects(async () => {
        await using deno = await denoForUser({ execPath: original });
        dir = deno.dir;
        throw new Error("the test failed");
      }, /the test failed/);
      assert.equal(exists(dir), false, `${dir} is removed when the test throws`);
    } finally {
      await Deno.remove(hidden, { recursive: true });
    }
  },
});

Deno.test({
  name: "denoForUser: the running deno is used as is when nobody can run it, else copied",
  ignore: skipIf(setprivReason(), "denoForUser running deno"),
  async fn() {
    await using deno = await denoForUser();
    const usable = modesAllowExec(Deno.execPath()) && (await runsAs(Deno.execPath())) === undefined;
    assert.equal(deno.copied, !usable);
    assert.equal(deno.path === Deno.execPath(), usable);
    assert.equal(await runsAs(deno.path), undefined);
  },
});
