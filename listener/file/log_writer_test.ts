import assert from "node:assert/strict";
import { LogWriter } from "./log_writer.ts";
import { logFiles, readLines } from "./log_reader.ts";
import { withTempDir } from "../testing.ts";

const enc = new TextEncoder();

Deno.test("LogWriter: concurrent appends share writes and fsyncs (group commit), in order", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/p.log`;
    const w = await LogWriter.open({ path, fsync: true, maxBytes: 0, keep: 1 });
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 200 }, (_, i) => w.append(enc.encode(`{"n":${i}}\n`), () => order.push(i))),
    );
    await w.close();
    assert.deepEqual(order, Array.from({ length: 200 }, (_, i) => i));
    const lines: string[] = [];
    for await (const l of readLines(path)) lines.push(l);
    assert.deepEqual(lines.map((l) => JSON.parse(l).n), order);
    assert.equal(w.stats.appends, 200);
    assert.ok(w.stats.fsyncs < 200 && w.stats.fsyncs >= 1, `fsyncs ${w.stats.fsyncs} < appends 200`);
    assert.equal(w.stats.fsyncs, w.stats.batches);
  });
});

Deno.test("LogWriter: size rotation keeps every line, whole, in order across files", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/p.log`;
    const w = await LogWriter.open({ path, fsync: false, maxBytes: 1000, keep: 50 });
    for (let i = 0; i < 300; i++) await w.append(enc.encode(`{"n":${i},"pad":"${"x".repeat(i % 40)}"}\n`));
    await w.close();
    const files = await logFiles(path);
    assert.ok(files.length > 5, `rotated into ${files.length} files`);
    assert.equal(files.at(-1), path);
    const ns: number[] = [];
    for (const f of files) {
      const { size } = await Deno.stat(f);
      assert.ok(size <= 1000, `${f} is ${size} bytes`);
      for await (const l of readLines(f)) ns.push(JSON.parse(l).n);
    }
    assert.deepEqual(ns, Array.from({ length: 300 }, (_, i) => i));
  });
});

Deno.test("LogWriter: LOG_KEEP bounds the rotated files, newest kept", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/p.log`;
    const w = await LogWriter.open({ path, fsync: false, maxBytes: 100, keep: 2 });
    for (let i = 0; i < 50; i++) await w.append(enc.encode(`{"n":${i},"pad":"${"y".repeat(30)}"}\n`));
    await w.close();
    const files = await logFiles(path);
    assert.deepEqual(files, [`${path}.2`, `${path}.1`, path]);
    const last: number[] = [];
    for (const f of files) for await (const l of readLines(f)) last.push(JSON.parse(l).n);
    assert.equal(last.at(-1), 49);
    assert.deepEqual(last, [...last].sort((a, b) => a - b));
  });
});

Deno.test("LogWriter: a rotation drops files left by a larger LOG_KEEP and shifts the rest, gaps and all", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/p.log`;
    for (const i of [1, 2, 5, 9]) await Deno.writeTextFile(`${path}.${i}`, `{"file":${i}}\n`);
    // Not names this writer gives its files: left alone.
    for (const other of ["p.log.0", "p.log.01"]) await Deno.writeTextFile(`${dir}/${other}`, `{"other":1}\n`);
    await Deno.writeTextFile(`${dir}/other.log.1`, "{}\n"); // another log's file: not ours to touch
    const w = await LogWriter.open({ path, fsync: false, maxBytes: 20, keep: 3 });
    await w.append(enc.encode(`{"n":1,"pad":"${"y".repeat(30)}"}\n`)); // fills the empty log
    await w.append(enc.encode(`{"n":2}\n`)); // rotates first
    await w.close();
    assert.deepEqual((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort(), [
      "other.log.1",
      "p.log",
      "p.log.0",
      "p.log.01",
      "p.log.1",
      "p.log.2",
      "p.log.3",
    ]);
    assert.equal(await Deno.readTextFile(`${path}.3`), `{"file":2}\n`);
    assert.equal(await Deno.readTextFile(`${path}.2`), `{"file":1}\n`);
    assert.match(await Deno.readTextFile(`${path}.1`), /"n":1/);
    assert.equal(await Deno.readTextFile(path), `{"n":2}\n`);
    assert.equal(await Deno.readTextFile(`${dir}/other.log.1`), "{}\n");
  });
});

const isRoot = Deno.uid() === 0;
if (!isRoot) console.log("skipping the disk-full test: it mounts a tiny tmpfs, which needs root");

Deno.test({
  name: "LogWriter: a write that fails (disk full) rejects its batch and leaves no part of it in the file",
  ignore: !isRoot,
  fn: async () => {
    await withTempDir(async (dir) => {
      const mnt = `${dir}/tiny`;
      await Deno.mkdir(mnt);
      const mount = await new Deno.Command("mount", { args: ["-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt] })
        .output();
      assert.ok(mount.success, new TextDecoder().decode(mount.stderr));
      try {
        const path = `${mnt}/p.log`;
        const w = await LogWriter.open({ path, fsync: true, maxBytes: 0, keep: 1 });
        const first = `{"n":1,"pad":"${"a".repeat(30_000)}"}\n`;
        await w.append(enc.encode(first));
        await assert.rejects(() => w.append(enc.encode(`{"n":2,"pad":"${"b".repeat(60_000)}"}\n`)));
        assert.equal(await Deno.readTextFile(path), first);
        // The writer goes on: the next batch that fits is stored after the first.
        await w.append(enc.encode('{"n":3}\n'));
        await w.close();
        assert.equal(await Deno.readTextFile(path), first + '{"n":3}\n');
      } finally {
        await new Deno.Command("umount", { args: [mnt] }).output();
      }
    });
  },
});

Deno.test("LogWriter: text and bytes appends, multi-byte and larger than the batch buffer, written as UTF-8", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/t.log`;
    const w = await LogWriter.open({ path, fsync: false, maxBytes: 0, keep: 1 });
    const big = `{"big":"${"é€😀x".repeat(200_000)}"}\n`; // ~2.2 MB of UTF-8 from 1 M UTF-16 units
    const parts = ['{"n":1,"s":"héllo"}\n', enc.encode('{"n":2}\n'), big, '{"n":3,"s":"😀"}\n'];
    await Promise.all(parts.map((p) => w.append(p)));
    await w.close();
    const expected = parts.map((p) => typeof p === "string" ? p : new TextDecoder().decode(p)).join("");
    assert.equal(await Deno.readTextFile(path), expected);
    assert.equal(w.size, enc.encode(expected).length);
  });
});

Deno.test("LogWriter: a log cleared by hand (> portwatcher.log) starts again with whole lines, not rotated early", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/p.log`;
    const w = await LogWriter.open({ path, fsync: false, maxBytes: 1000, keep: 5 });
    for (let i = 0; i < 20; i++) await w.append(enc.encode(`{"n":${i},"pad":"${"z".repeat(30)}"}\n`));
    await Deno.truncate(path, 0); // the seed's `docker exec listner-api sh -lc '> /logs/portwatcher.log'`
    for (let i = 20; i < 30; i++) await w.append(enc.encode(`{"n":${i},"pad":"${"z".repeat(30)}"}\n`));
    await w.close();
    assert.deepEqual(
      await logFiles(path),
      [path],
      "no rotation: the cleared file holds 10 lines, under 1000 bytes",
    );
    const lines: string[] = [];
    for await (const l of readLines(path)) lines.push(l);
    assert.deepEqual(lines.map((l) => JSON.parse(l).n), Array.from({ length: 10 }, (_, i) => 20 + i));
    assert.equal(w.size, (await Deno.stat(path)).size, "the writer's size follows the file");
  });
});
