import assert from "node:assert/strict";
import { isTmpfs, loadSnapshot, saveSnapshot } from "./snapshot.ts";

Deno.test("snapshot: saved atomically, loaded by its owner only, bad files reported not thrown", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/sub/snap`;
    const state = { version: 1 as const, ports: [] };
    await saveSnapshot(path, { owner: "h/c", savedAt: "x", state });
    assert.deepEqual((await loadSnapshot(path, "h/c")).snapshot?.state, state);
    assert.match((await loadSnapshot(path, "other")).problem ?? "", /belongs to h\/c/);
    assert.deepEqual([...Deno.readDirSync(`${dir}/sub`)].map((e) => e.name), ["snap"], "no temp file left");
    await Deno.writeTextFile(path, "{torn");
    assert.match((await loadSnapshot(path, "h/c")).problem ?? "", /not valid JSON/);
    assert.deepEqual(await loadSnapshot(`${dir}/missing`, "h/c"), {});
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("saveSnapshot: an outbox given serialised, in parts, reads back as one array", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/snap`;
    const state = { version: 1 as const, ports: [] };
    const a = [{ id: "1" }, { id: "2" }];
    const b = [{ id: "3" }];
    await saveSnapshot(path, { owner: "o", savedAt: "t", state }, [
      JSON.stringify(a).slice(1, -1),
      "",
      JSON.stringify(b).slice(1, -1),
    ]);
    assert.deepEqual((await loadSnapshot(path, "o")).snapshot?.outbox, [...a, ...b]);
    await saveSnapshot(path, { owner: "o", savedAt: "t", state }, []);
    assert.equal((await loadSnapshot(path, "o")).snapshot?.outbox, undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("isTmpfs: the longest mount point holding the directory decides", () => {
  const mountinfo = [
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw",
    "30 22 0:25 / /dev/shm rw,nosuid,nodev shared:2 - tmpfs tmpfs rw",
    "31 22 0:26 / /dev/shm/disk rw shared:3 - ext4 /dev/sdb1 rw",
  ].join("\n");
  const real = Deno.realPathSync("/");
  assert.equal(isTmpfs(real, mountinfo), false, "/ is ext4");
  assert.equal(isTmpfs("/dev/shm", mountinfo), true);
});
