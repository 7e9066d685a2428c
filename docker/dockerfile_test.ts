/**
 * docker/Dockerfile and .dockerignore against the code they run and the builders that build them: no `# syntax`
 * line (BuildKit would fetch a frontend image); the base image is the build argument DENO_IMAGE, pinned to the
 * Deno version the README and .ci/run pin, and compose.yaml passes the same default; the stages, with the eBPF
 * stage after every other target (the legacy builder builds every stage above its target), carrying libbpf1 and
 * the compiled BPF object instead of bpftrace and LLVM; tini as a subreaper
 * runs docker/entrypoint.sh in every stage; each stage's CMD is a deno program that exists or a program the
 * stage has, and its ENV is read by that program or by docker/entrypoint.sh; COPY sources exist; .dockerignore
 * keeps what the images run; docker/entrypoint.sh hands its directories over and drops root (as root only).
 * No image is built here: that needs an engine.
 * @module
 */
import assert from "node:assert/strict";
import { relative } from "node:path";
import { OBJECT_PATH } from "../ebpf/libbpf/libbpf_source.ts";
import {
  BASE_PROGRAMS,
  cmdOf,
  commandOf,
  dockerfile,
  dockerfileText,
  entryOf,
  envNames,
  envReadBy,
  inherited,
  PACKAGE_PROGRAMS,
  packagesOf,
  parentOf,
  programsOf,
  resolveFrom,
  ROOT,
  run,
  services,
  stages,
  tryRun,
  workdirOf,
} from "./testing/compose_file.ts";

const stageIndex = (name: string) => stages.findIndex((s) => s.name === name);
/** The compiled programs the native eBPF engine loads, relative to the repository root. */
const BPF_OBJECT = relative(ROOT, OBJECT_PATH);

Deno.test("docker/Dockerfile: no `# syntax=` directive, so BuildKit fetches no frontend image", () => {
  const directive = dockerfileText.split("\n").find((l) => /^\s*#\s*syntax\s*=/i.test(l));
  assert.equal(directive, undefined, `docker/Dockerfile names a frontend image: ${directive}`);
});

Deno.test("docker/Dockerfile: the stages, the eBPF stage after every other target, default the listener", () => {
  assert.deepEqual(
    stages.map((s) => s.name),
    ["os", "app", "listener", "tools", "watcher", "tester", "ebpf", "default"],
    "the stages of docker/Dockerfile",
  );
  for (const stage of stages) {
    const parent = parentOf(stage);
    if (parent) assert.ok(stageIndex(parent.name) < stageIndex(stage.name), `${stage.name} after its parent`);
    for (const copy of stage.instructions.filter((i) => i.op === "COPY")) {
      const from = /--from=(\S+)/.exec(copy.args)?.[1];
      if (from === undefined) continue;
      assert.ok(stageIndex(from) >= 0, `${stage.name}: COPY --from=${from} names a stage`);
      assert.ok(stageIndex(from) < stageIndex(stage.name), `${stage.name}: COPY --from=${from} is above it`);
    }
  }
  // The legacy builder builds every stage above the target: the eBPF stage must be below every other target.
  const heavy = stages.filter((s) =>
    s.instructions.some((i) => i.op === "RUN" && /apt-get\s+install[^&]*\b(bpftrace|clang|llvm)/.test(i.args))
  ).map((s) => s.name);
  assert.deepEqual(
    heavy,
    [],
    "no stage installs bpftrace, clang or LLVM (the BPF object is shipped compiled)",
  );
  const ebpf = stages[stageIndex("ebpf")];
  assert.ok(
    packagesOf(ebpf).includes("libbpf1"),
    "the ebpf stage installs libbpf1 (the native engine's loader)",
  );
  assert.ok(
    ebpf.instructions.some((i) =>
      i.op === "RUN" && i.args.includes(`test -s ${workdirOf(ebpf)}/${BPF_OBJECT}`)
    ),
    `the ebpf stage's build fails without ${BPF_OBJECT} (test -s)`,
  );
  for (const s of stages.filter((s) => s.name !== "ebpf" && s.from !== "ebpf")) {
    assert.ok(
      !s.instructions.some((i) => i.op === "RUN" && /\blibbpf1\b/.test(i.args)),
      `${s.name}: only the ebpf stage names libbpf1`,
    );
  }
  const targets = new Set(["listener", "watcher", "tester"]);
  for (const [, s] of services) {
    if (typeof s.build === "object" && s.build.target) targets.add(s.build.target);
  }
  targets.delete("ebpf");
  for (const target of targets) {
    assert.ok(stageIndex(target) >= 0, `target ${target} is a stage`);
    assert.ok(
      stageIndex(target) < stageIndex("ebpf"),
      `target ${target} stands above ebpf, so the legacy builder does not build bpftrace for it`,
    );
  }
  const last = stages.at(-1)!;
  assert.equal(last.name, "default");
  assert.equal(last.from, "listener", "a plain `docker build` gives the listener");
  assert.equal(cmdOf(last)?.join(" "), "deno task listen");
});

Deno.test("docker/Dockerfile: the base image is ARG DENO_IMAGE, pinned as the README and .ci/run pin Deno", () => {
  const readme = /deno@(\d+\.\d+\.\d+)/.exec(Deno.readTextFileSync(`${ROOT}/README.md`))?.[1];
  const ci = /deno@(\d+\.\d+\.\d+)/.exec(Deno.readTextFileSync(`${ROOT}/.ci/run`))?.[1];
  assert.ok(readme, "the README pins a Deno version (deno@x.y.z)");
  assert.equal(ci, readme, ".ci/run installs the Deno version the README pins");
  const image = `denoland/deno:debian-${readme}`;
  assert.equal(dockerfile.args.DENO_IMAGE, image, "ARG DENO_IMAGE (before the first FROM) defaults to it");

  const roots = stages.filter((s) => parentOf(s) === undefined);
  assert.deepEqual(
    roots.map((s) => s.from),
    ["${DENO_IMAGE}"],
    "every stage derives from FROM ${DENO_IMAGE}",
  );
  assert.deepEqual(roots.map((s) => resolveFrom(s.from)), [image]);
  // docker/base/build.sh reads the version from this line to build a local stand-in under the same name
  assert.match(dockerfileText, /^ARG DENO_IMAGE=denoland\/deno:debian-\d+\.\d+\.\d+$/m);
  assert.ok(
    Deno.readTextFileSync(`${ROOT}/docker/base/build.sh`).includes("ARG DENO_IMAGE=denoland/deno:debian-"),
    "docker/base/build.sh reads the Deno version from ARG DENO_IMAGE",
  );

  for (const [name, s] of services) {
    if (typeof s.build !== "object") continue;
    const args = s.build.args ?? {};
    assert.equal(args.DENO_IMAGE, `\${DENO_IMAGE:-${image}}`, `${name}: passes DENO_IMAGE, default ${image}`);
    for (const arg of Object.keys(args)) {
      assert.ok(arg in dockerfile.args, `${name}: build arg ${arg} is an ARG of docker/Dockerfile`);
    }
  }
});

Deno.test("docker/Dockerfile: every stage runs its command under tini -s (a subreaper) and entrypoint.sh", () => {
  for (const stage of stages) {
    const entrypoint = inherited(stage, "ENTRYPOINT").at(-1);
    assert.ok(entrypoint, `${stage.name} has an ENTRYPOINT`);
    const workdir = workdirOf(stage);
    assert.deepEqual(
      JSON.parse(entrypoint),
      ["/tini", "-s", "--", `${workdir}/docker/entrypoint.sh`],
      `${stage.name}: tini forwards signals and reaps orphans also when not PID 1 (pid: host)`,
    );
  }
  assert.ok(Deno.statSync(`${ROOT}/docker/entrypoint.sh`).isFile, "docker/entrypoint.sh exists");
});

Deno.test("docker/Dockerfile: each stage's CMD is a deno program or a program it has; its ENV is read", async () => {
  const entrypoint = Deno.readTextFileSync(`${ROOT}/docker/entrypoint.sh`);
  const withCmd = stages.filter((s) => cmdOf(s) !== undefined);
  assert.ok(withCmd.length >= 5, "the listener, watcher, tester, ebpf and default stages have a CMD");
  for (const stage of withCmd) {
    const cmd = cmdOf(stage)!;
    const entry = entryOf(cmd);
    const read = entry === undefined ? new Set<string>() : await envReadBy(entry);
    if (entry !== undefined) {
      assert.ok(Deno.statSync(`${ROOT}/${entry}`).isFile, `${stage.name}: ${entry} exists`);
    } else {
      assert.notEqual(cmd[0], "deno", `${stage.name}: ${cmd.join(" ")} is a deno task or file`);
      assert.ok(
        programsOf(stage).has(cmd[0]),
        `${stage.name}: ${cmd[0]} is a program the stage installs or its base has (${[
          ...programsOf(stage),
        ]})`,
      );
    }
    for (const v of envNames(stage)) {
      if (v.startsWith("DENO_") || v === "DEBIAN_FRONTEND") continue; // the tools'
      if (v.startsWith("PORTWATCH_")) {
        assert.ok(entrypoint.includes(v), `${stage.name}: ${v} is read by docker/entrypoint.sh`);
        continue;
      }
      assert.ok(read.has(v), `${stage.name}: ${entry ?? cmd[0]} reads ${v}`);
    }
  }
});

Deno.test("docker/Dockerfile: what each package gives is known, and agrees with dpkg where it is installed", async () => {
  const installed = [...new Set(stages.flatMap(packagesOf))];
  assert.ok(installed.includes("nodejs") && installed.includes("libbpf1"), `packages: ${installed}`);
  for (const p of installed) {
    assert.ok(PACKAGE_PROGRAMS[p], `docker/Dockerfile installs ${p}: add its programs to PACKAGE_PROGRAMS`);
  }
  if (!tryRun(["dpkg-query", "--version"])) {
    console.log("docker/dockerfile_test.ts: no dpkg here, the program tables are not checked against it");
    return;
  }
  const pairs = [
    ...Object.entries(BASE_PROGRAMS).filter(([, p]) => p !== "denoland/deno").map(([prog, p]) => [p, prog]),
    ...Object.entries(PACKAGE_PROGRAMS).flatMap(([p, progs]) => progs.map((prog) => [p, prog])),
  ];
  let checked = 0;
  for (const [pkg, prog] of pairs) {
    const status = await run(["dpkg-query", "-W", "-f", "${Status} ${Essential}", pkg]);
    if (!status.stdout.startsWith("install ok installed")) continue;
    if (Object.values(BASE_PROGRAMS).includes(pkg)) {
      assert.match(status.stdout, / yes$/, `${pkg} is an essential package, in every Debian image`);
    }
    // the package itself or one it depends on (python3's /usr/bin/python3 is python3-minimal's)
    const depends = (await run(["dpkg-query", "-W", "-f", "${Pre-Depends},${Depends}", pkg])).stdout.split(
      /[,|]/,
    )
      .map((d) => d.trim().split(/[\s:]/)[0]);
    const paths = ["/usr/bin", "/bin", "/usr/sbin", "/sbin"].map((d) => `${d}/${prog}`);
    const owners = (await run(["dpkg", "-S", ...paths])).stdout.split("\n").map((l) => l.split(":")[0]);
    assert.ok(
      owners.some((o) => o === pkg || depends.includes(o)),
      `${pkg} installs ${prog} (dpkg -S: ${owners.filter((o) => o)})`,
    );
    checked++;
  }
  assert.ok(checked > 0, "dpkg knows at least the essential packages");
  // libbpf1 has no program: what the native engine opens (Deno.dlopen("libbpf.so.1")) is its library
  const libbpf = await run(["dpkg-query", "-L", "libbpf1"]);
  if (libbpf.code === 0) {
    assert.match(
      libbpf.stdout,
      /\/libbpf\.so\.1$/m,
      "libbpf1 installs libbpf.so.1, the name ebpf/libbpf opens",
    );
  }
});

/** A .dockerignore pattern as a RegExp over repository paths (`*`, `**`, `?`; a directory covers its files). */
function ignoreRegExp(pattern: string): RegExp {
  const p = pattern.replace(/^\/+/, "").replace(/\/+$/, "");
  let re = "";
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === "*" && p[i + 1] === "*") {
      re += ".*";
      i++;
      if (p[i + 1] === "/") i++;
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}(/.*)?$`);
}

Deno.test("docker/Dockerfile: COPY sources exist; .dockerignore keeps what the image runs", () => {
  for (const stage of stages) {
    for (const copy of stage.instructions.filter((i) => i.op === "COPY" && !i.args.includes("--from="))) {
      const words = copy.args.split(/\s+/).filter((w) => !w.startsWith("--"));
      for (const src of words.slice(0, -1)) {
        if (src !== ".") assert.ok(Deno.statSync(`${ROOT}/${src}`), `COPY source ${src} exists`);
      }
    }
  }
  const patterns = Deno.readTextFileSync(`${ROOT}/.dockerignore`).split("\n").map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  assert.ok(!patterns.some((p) => p.startsWith("!")), "no exceptions: the matcher here does not model them");
  const needed = ["deno.json", "deno.lock", "docker/entrypoint.sh", "docker/healthcheck.sh", "start.ts"];
  // the native engine's modules and the compiled programs it loads (the ebpf stage's build checks for the object)
  for (const e of Deno.readDirSync(`${ROOT}/ebpf/libbpf`)) {
    if (e.isFile && /\.(ts|o)$/.test(e.name)) needed.push(`ebpf/libbpf/${e.name}`);
  }
  assert.ok(needed.includes(BPF_OBJECT), `${BPF_OBJECT} is the object the engine loads`);
  for (const [, s] of services) {
    const entry = entryOf(commandOf(s));
    if (entry) needed.push(entry);
  }
  for (const dir of ["events", "listener", "watcher", "ebpf", "testers"]) {
    for (const e of Deno.readDirSync(`${ROOT}/${dir}`)) if (e.isFile) needed.push(`${dir}/${e.name}`);
  }
  for (const path of needed) {
    const hit = patterns.find((p) => ignoreRegExp(p).test(path));
    assert.equal(hit, undefined, `.dockerignore pattern ${hit} drops ${path}`);
  }
  assert.ok(ignoreRegExp(".git").test(".git/config") && ignoreRegExp("**/*.log").test("logs/a/x.log"));
});

const rootReason = Deno.uid() !== 0
  ? "needs root"
  : !tryRun(["id", "nobody"])
  ? "no user nobody"
  : !tryRun(["setpriv", "--version"])
  ? "no setpriv"
  : undefined;
if (rootReason) console.log(`docker/dockerfile_test.ts: skipping the entrypoint test: ${rootReason}`);

Deno.test({
  name: "docker/entrypoint.sh: as root with PORTWATCH_USER, hands PORTWATCH_WRITABLE over and drops root",
  ignore: rootReason !== undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "portwatch-entrypoint-test-" });
    try {
      await Deno.chmod(dir, 0o755);
      const logs = `${dir}/logs`;
      const r = await run(["sh", `${ROOT}/docker/entrypoint.sh`, "sh", "-c", `id -u && touch ${logs}/x`], {
        PORTWATCH_USER: "nobody",
        PORTWATCH_WRITABLE: logs,
        PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      });
      assert.equal(r.code, 0, r.stderr);
      const nobody = Number((await run(["id", "-u", "nobody"])).stdout.trim());
      assert.equal(Number(r.stdout.trim()), nobody, "the command runs as PORTWATCH_USER");
      assert.equal(Deno.statSync(logs).uid, nobody, "PORTWATCH_WRITABLE belongs to PORTWATCH_USER");
      const plain = await run(["sh", `${ROOT}/docker/entrypoint.sh`, "id", "-u"], { PATH: "/usr/bin:/bin" });
      assert.equal(plain.stdout.trim(), "0", "without PORTWATCH_USER the command runs as is");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
