/**
 * `deno task bpf`: build the native engine's programs, or check that the shipped object is built from its source.
 *
 *     deno task bpf build            compile portwatch.bpf.c into portwatch.bpf.o (Debian: clang, llvm, libbpf-dev)
 *     deno task bpf build --vmlinux  first regenerate vmlinux.h from this kernel's BTF (Debian: bpftool)
 *     deno task bpf check            compile into a temporary directory and compare with portwatch.bpf.o
 *
 * The build is reproducible: the same clang, source, vmlinux.h and libbpf headers give the same bytes wherever
 * the clone is (the BTF's line info names the source relative to this folder, and the DWARF is stripped; the
 * BTF that CO-RE needs stays). vmlinux.h is committed, so a build does not depend on the kernel
 * of the machine that builds.
 * @module
 */
import { parseArgs } from "node:util";

const DIR = new URL(".", import.meta.url).pathname;
const SOURCE = "portwatch.bpf.c";
const OBJECT = "portwatch.bpf.o";

async function run(cmd: string, args: string[], cwd = DIR): Promise<string> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      const pkg = cmd === "bpftool" ? "bpftool" : cmd === "llvm-strip" ? "llvm" : "clang";
      throw new Error(`${cmd} is not installed (Debian: apt-get install ${pkg} libbpf-dev)`);
    }
    throw e;
  }
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed:\n${new TextDecoder().decode(out.stderr)}${text}`);
  }
  return text;
}

/** The compiler's version line, e.g. "Debian clang version 14.0.6". */
export async function clangVersion(): Promise<string> {
  return (await run("clang", ["--version"])).split("\n")[0];
}

/** Compile the source into `out` (a path relative to this folder or absolute). */
export async function compile(out: string): Promise<void> {
  await run("clang", [
    "-g", // BTF for CO-RE (the DWARF is stripped below)
    "-O2",
    "-target",
    "bpf",
    "-D__TARGET_ARCH_x86",
    "-I.",
    "-fdebug-compilation-dir=.", // the BTF's line info names ./portwatch.bpf.c, not this machine's path
    "-c",
    SOURCE,
    "-o",
    out,
  ]);
  await run("llvm-strip", ["-g", out]);
}

/** Regenerate vmlinux.h from the running kernel's BTF. */
export async function writeVmlinux(): Promise<void> {
  const header = await run("bpftool", ["btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "c"]);
  await Deno.writeTextFile(`${DIR}vmlinux.h`, header);
}

async function same(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([Deno.readFile(a), Deno.readFile(b)]);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

async function main(args: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: { vmlinux: { type: "boolean" }, help: { type: "boolean", short: "h" } },
  });
  const [command] = positionals;
  if (values.help || !command) {
    console.log("usage: deno task bpf build [--vmlinux] | check");
    return values.help ? 0 : 2;
  }
  try {
    if (command === "build") {
      if (values.vmlinux) await writeVmlinux();
      await compile(OBJECT);
      console.log(`built ${DIR}${OBJECT} with ${await clangVersion()}`);
      return 0;
    }
    if (command === "check") {
      const tmp = await Deno.makeTempDir({ prefix: "portwatch-bpf-" });
      try {
        await compile(`${tmp}/${OBJECT}`);
        if (await same(`${tmp}/${OBJECT}`, `${DIR}${OBJECT}`)) {
          console.log(`${OBJECT} matches ${SOURCE} (${await clangVersion()})`);
          return 0;
        }
        console.error(
          `${OBJECT} does not match ${SOURCE}: rebuilt with ${await clangVersion()}, the bytes differ.\n` +
            `Run \`deno task bpf build\` and commit ${OBJECT} with its source.`,
        );
        return 1;
      } finally {
        await Deno.remove(tmp, { recursive: true });
      }
    }
    console.error(`deno task bpf: unknown command ${JSON.stringify(command)}; use build or check`);
    return 2;
  } catch (e) {
    console.error(`deno task bpf: ${(e as Error).message}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
