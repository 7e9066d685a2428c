/**
 * `deno task bpf check` and the build's reproducibility, with the real compiler: the shipped object is what its
 * source compiles to, a copy of the folder elsewhere compiles to the same bytes, and check notices an object
 * that is not its source's. Needs clang, llvm-strip and libbpf's headers (Debian: clang llvm libbpf-dev);
 * skips and says why otherwise.
 */
import assert from "node:assert/strict";
import { run } from "../../testing/process.ts";
import { skipIf } from "../../testing/netns.ts";

const DIR = new URL(".", import.meta.url).pathname;
/** What a build reads: the source, the kernel's types and the build script (it compiles in its own folder). */
const INPUTS = ["portwatch.bpf.c", "vmlinux.h", "build.ts"];
/** clang -O2 of the programs with a 133k-line vmlinux.h: seconds, more on a loaded machine. */
const BUILD_MS = 120_000;

function installed(cmd: string): boolean {
  try {
    return new Deno.Command(cmd, { args: ["--version"], stdout: "null", stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
}

function buildSkipReason(): string | undefined {
  if (Deno.build.os !== "linux") return `the BPF build is tested on Linux, this is ${Deno.build.os}`;
  if (!installed("clang")) return "clang is not installed (Debian: apt-get install clang)";
  if (!installed("llvm-strip")) return "llvm-strip is not installed (Debian: apt-get install llvm)";
  for (const dir of ["/usr/include", "/usr/local/include"]) {
    try {
      Deno.statSync(`${dir}/bpf/bpf_helpers.h`);
      return undefined;
    } catch { /* next */ }
  }
  return "libbpf's headers (bpf/bpf_helpers.h) are not installed (Debian: apt-get install libbpf-dev)";
}

const SKIP = buildSkipReason();

/**
 * `deno run build.ts ARGS` as `deno task bpf` runs it, with the build script at `script`; a copy outside the
 * repository runs without the repository's deno.json (it needs none).
 */
function bpf(script: string, ...args: string[]) {
  const config = script.startsWith(DIR) ? [] : ["--no-config"];
  return run(
    [Deno.execPath(), "run", ...config, "--allow-run", "--allow-read", "--allow-write", script, ...args],
    { check: false, timeoutMs: BUILD_MS },
  );
}

/** A copy of the build's inputs in a temporary directory of its own (and `extra` files of this folder). */
async function copyOfFolder(extra: string[] = []): Promise<string> {
  const tmp = await Deno.makeTempDir({ prefix: "portwatch-bpf-test-" });
  for (const name of [...INPUTS, ...extra]) await Deno.copyFile(`${DIR}${name}`, `${tmp}/${name}`);
  return tmp;
}

async function sameBytes(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([Deno.readFile(a), Deno.readFile(b)]);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

Deno.test({
  name: "bpf build: check says the shipped object is built from its source",
  ignore: skipIf(SKIP, "bpf build"),
  async fn() {
    const before = await Deno.readFile(`${DIR}portwatch.bpf.o`);
    const out = await bpf(`${DIR}build.ts`, "check");
    assert.equal(out.code, 0, `deno task bpf check failed:\n${out.stderr}${out.stdout}`);
    assert.match(out.stdout, /^portwatch\.bpf\.o matches portwatch\.bpf\.c \(.*clang version [\d.]+.*\)$/m);
    assert.deepEqual(await Deno.readFile(`${DIR}portwatch.bpf.o`), before, "check leaves the object alone");
  },
});

Deno.test({
  name: "bpf build: a copy of the folder elsewhere builds the same bytes (reproducible)",
  ignore: skipIf(SKIP, "bpf build"),
  async fn() {
    const tmp = await copyOfFolder();
    try {
      const out = await bpf(`${tmp}/build.ts`, "build");
      assert.equal(out.code, 0, `the build in ${tmp} failed:\n${out.stderr}${out.stdout}`);
      assert.match(out.stdout, new RegExp(`^built ${tmp}/portwatch\\.bpf\\.o with .*clang`, "m"));
      const built = await Deno.readFile(`${tmp}/portwatch.bpf.o`);
      assert.equal(String.fromCharCode(...built.subarray(1, 4)), "ELF");
      assert.ok(
        await sameBytes(`${tmp}/portwatch.bpf.o`, `${DIR}portwatch.bpf.o`),
        `built in ${tmp}: ${built.length} bytes that differ from the shipped object's`,
      );
      // The build names no directory of the machine that built it.
      const text = new TextDecoder("latin1").decode(built);
      assert.ok(!text.includes(tmp), "the temporary directory's path is not in the object");
      assert.ok(!text.includes(DIR), "the repository's path is not in the object");
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name: "bpf build: check fails, and says how to fix it, when the object is not its source's",
  ignore: skipIf(SKIP, "bpf build"),
  async fn() {
    const tmp = await copyOfFolder(["portwatch.bpf.o"]);
    try {
      // A program changed in the source, the object not rebuilt.
      const source = await Deno.readTextFile(`${tmp}/portwatch.bpf.c`);
      const changed = source.replace("#define PW_CLONE_THREAD 0x10000", "#define PW_CLONE_THREAD 0x20000");
      assert.notEqual(changed, source);
      await Deno.writeTextFile(`${tmp}/portwatch.bpf.c`, changed);
      const out = await bpf(`${tmp}/build.ts`, "check");
      assert.equal(out.code, 1, `${out.stderr}${out.stdout}`);
      assert.match(out.stderr, /portwatch\.bpf\.o does not match portwatch\.bpf\.c/);
      assert.match(out.stderr, /deno task bpf build/);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
