import assert from "node:assert/strict";
import { writeFileAtomic } from "./atomic_write.ts";

Deno.test("writeFileAtomic: creates the directory, replaces the contents, leaves no temporary file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/a/b/state.json`;
    await writeFileAtomic(path, "one");
    await writeFileAtomic(path, "two");
    assert.equal(await Deno.readTextFile(path), "two");
    assert.deepEqual([...Deno.readDirSync(`${dir}/a/b`)].map((e) => e.name), ["state.json"]);
    // A failed write (the target is a directory) leaves no temporary file behind and throws.
    await Deno.mkdir(`${dir}/a/b/dir.json`);
    await assert.rejects(writeFileAtomic(`${dir}/a/b/dir.json`, "x"));
    assert.deepEqual([...Deno.readDirSync(`${dir}/a/b`)].map((e) => e.name).sort(), [
      "dir.json",
      "state.json",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
