import assert from "node:assert/strict";
import { goodEnd, recoverLog } from "./log_recovery.ts";
import { withTempDir } from "../testing.ts";

const enc = new TextEncoder();

Deno.test("recoverLog: a torn last line is moved to .corrupt and cut off", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/p.log`;
    await Deno.writeTextFile(path, '{"ts":"a","id":"1"}\n{"ts":"b","id":"2"}\n{"ts":"c","id":"3","ev');
    const report = await recoverLog(path);
    assert.equal(report.movedBytes, '{"ts":"c","id":"3","ev'.length);
    assert.equal(await Deno.readTextFile(path), '{"ts":"a","id":"1"}\n{"ts":"b","id":"2"}\n');
    const corrupt = await Deno.readTextFile(`${dir}/p.log.corrupt`);
    assert.match(
      corrupt,
      /^# .* 22 bytes cut from the end of .*p\.log at offset 40\n\{"ts":"c","id":"3","ev\n$/,
    );
  });
});

Deno.test("recoverLog: a tail of NUL bytes (power loss) and a clean log", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/p.log`;
    const good = '{"ts":"a","id":"1"}\n';
    await Deno.writeFile(path, new Uint8Array([...enc.encode(good), 0, 0, 0, 0, 0x0a, 0, 0]));
    const report = await recoverLog(path);
    assert.equal(report.movedBytes, 7);
    assert.equal(await Deno.readTextFile(path), good);
    assert.equal((await recoverLog(path)).movedBytes, 0);
    assert.equal((await recoverLog(`${dir}/missing.log`)).movedBytes, 0);
  });
});

Deno.test("goodEnd: keeps a first line that starts before the tail it was given", () => {
  const tail = enc.encode('partial-start"}\n{"ok":1}\n');
  assert.equal(goodEnd(tail, 1000, false), 1000 + tail.length);
});
