/**
 * Parsing helpers shared by docker/compose_test.ts and docker/dockerfile_test.ts: compose.yaml as compose sees
 * it with no variable set (`${NAME:-default}` resolved to the default), each service's environment and volumes,
 * docker/Dockerfile's global ARGs and stages (with what a stage inherits from its parents), the program a
 * command runs, the environment variables a program's modules read, and the programs a stage has (its base's
 * and those of the Debian packages it installs).
 * @module
 */
import assert from "node:assert/strict";
import { fileURLToPath as fromFileUrl } from "node:url";
import { parse } from "yaml";

export const ROOT = fromFileUrl(new URL("../../", import.meta.url)).replace(/\/$/, "");
export const LISTENER = "listner-api";
export const SEED_SERVICES = [LISTENER, "portwatcher", "ebpf-portwatcher", "nodejs-tester", "python-tester"];
/** The store tier of `--profile pg`: a second listener replica and PostgreSQL. */
export const PG_SERVICES = ["listner-api-2", "postgres"];
export const WATCHERS = ["portwatcher", "ebpf-portwatcher"];
export const TESTERS = ["nodejs-tester", "python-tester"];

export type Json = Record<string, unknown>;
export interface Build {
  context?: string;
  dockerfile?: string;
  target?: string;
  args?: Record<string, string>;
}
export interface Service {
  build?: Build | string;
  image?: string;
  container_name?: string;
  command?: string[] | string;
  environment?: Record<string, string | number | boolean | null> | string[];
  healthcheck?: { test?: string[] | string };
  ports?: (string | Json)[];
  volumes?: (string | Json)[];
  profiles?: string[];
  pid?: string;
  privileged?: boolean;
  cgroup?: string;
  cap_add?: string[];
  security_opt?: string[];
  networks?: Json;
  depends_on?: Record<string, { condition?: string }> | string[];
}

export const compose = parse(Deno.readTextFileSync(`${ROOT}/compose.yaml`), { merge: true }) as {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
  "x-watcher-volumes"?: string[];
};
export const denoJson = JSON.parse(Deno.readTextFileSync(`${ROOT}/deno.json`)) as {
  tasks: Record<string, string>;
};
export const services = Object.entries(compose.services);

/** `${NAME:-default}`, `${NAME-default}`, `${NAME}` as compose resolves them with NAME unset; `$$` is `$`. */
export function withDefaults(value: string): string {
  return value
    .replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}/g, (_m, _name, def) => def ?? "")
    .replace(/\$\$/g, "$");
}

/** A service's environment, defaults resolved. */
export function envOfService(s: Service): Record<string, string> {
  const out: Record<string, string> = {};
  if (Array.isArray(s.environment)) {
    for (const item of s.environment) {
      const eq = item.indexOf("=");
      out[eq < 0 ? item : item.slice(0, eq)] = eq < 0 ? "" : withDefaults(item.slice(eq + 1));
    }
  } else {
    for (const [k, v] of Object.entries(s.environment ?? {})) {
      out[k] = v === null ? "" : withDefaults(String(v));
    }
  }
  return out;
}

export function commandOf(s: Service): string[] {
  assert.ok(Array.isArray(s.command), "commands are written in exec form (a list)");
  return s.command;
}

/** A volume of a service, defaults resolved: `source:target[:mode]` or the long syntax. */
export interface Volume {
  source: string;
  target: string;
  mode?: string;
}

export function volumesOf(s: Service): Volume[] {
  return (s.volumes ?? []).map((v) => {
    if (typeof v !== "string") {
      return {
        source: String(v.source ?? ""),
        target: String(v.target),
        mode: v.read_only ? "ro" : undefined,
      };
    }
    const [source, target, mode] = withDefaults(v).split(":");
    assert.ok(target, `volume ${v} has a source and a target`);
    return { source, target, mode };
  });
}

/** Whether `path` is on one of the service's volumes. */
export function onVolume(path: string, s: Service): boolean {
  return volumesOf(s).some((v) => path === v.target || path.startsWith(`${v.target}/`));
}

/** A Dockerfile stage. */
export interface Stage {
  name: string;
  /** The FROM argument as written (an image, `${ARG}`, or a stage name). */
  from: string;
  instructions: { op: string; args: string }[];
}

/** The global ARGs (before the first FROM, with their defaults) and the stages of a Dockerfile. */
export function parseDockerfile(text: string): { args: Record<string, string>; stages: Stage[] } {
  const lines = text.split("\n").filter((l) => !/^\s*#/.test(l));
  const joined: string[] = [];
  let cur = "";
  for (const line of lines) {
    if (/\\\s*$/.test(line)) {
      cur += line.replace(/\\\s*$/, " ");
      continue;
    }
    cur += line;
    if (cur.trim() !== "") joined.push(cur.trim());
    cur = "";
  }
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const l of joined) {
    const m = /^(\S+)\s+(.*)$/.exec(l);
    if (!m) continue;
    const op = m[1].toUpperCase();
    if (op === "FROM") {
      const from = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(m[2].replace(/--platform=\S+\s+/, ""));
      assert.ok(from, `FROM line: ${l}`);
      stages.push({ name: from[2] ?? String(stages.length), from: from[1], instructions: [] });
    } else if (stages.length > 0) {
      stages.at(-1)!.instructions.push({ op, args: m[2] });
    } else if (op === "ARG") {
      const [name, ...def] = m[2].split("=");
      args[name] = def.join("=");
    }
  }
  return { args, stages };
}

export const dockerfilePath = `${ROOT}/docker/Dockerfile`;
export const dockerfileText = Deno.readTextFileSync(dockerfilePath);
export const dockerfile = parseDockerfile(dockerfileText);
export const stages = dockerfile.stages;

/** The image a FROM names, `${ARG}` / `$ARG` resolved with `args` (the global ARGs' defaults). */
export function resolveFrom(from: string, args: Record<string, string> = dockerfile.args): string {
  return from.replace(/\$\{(\w+)\}|\$(\w+)/g, (_m, a, b) => {
    const name = a ?? b;
    assert.ok(name in args, `FROM ${from}: ${name} is a global ARG (before the first FROM)`);
    return args[name];
  });
}

/** The stage a stage is built FROM, if it is one. */
export function parentOf(stage: Stage): Stage | undefined {
  return stages.find((s) => s.name === stage.from);
}

/** Every instruction `op` of a stage, its parents' first (FROM <stage> chains). */
export function inherited(stage: Stage, op: string): string[] {
  const parent = parentOf(stage);
  const own = stage.instructions.filter((i) => i.op === op).map((i) => i.args);
  return [...(parent ? inherited(parent, op) : []), ...own];
}

export function workdirOf(stage: Stage): string {
  const w = inherited(stage, "WORKDIR").at(-1);
  assert.ok(w, `stage ${stage.name} sets a WORKDIR`);
  return w.replace(/\/$/, "");
}

/** ENV names of a stage (ENV A=1 B=2 and the old ENV A 1). */
export function envNames(stage: Stage): string[] {
  return inherited(stage, "ENV").flatMap((args) => {
    const pairs = [...args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=/g)].map((m) => m[1]);
    return pairs.length > 0 ? pairs : [args.split(/\s+/)[0]];
  });
}

/** The exec-form CMD a stage runs (its own or inherited). */
export function cmdOf(stage: Stage): string[] | undefined {
  const cmd = inherited(stage, "CMD").at(-1);
  return cmd === undefined ? undefined : JSON.parse(cmd) as string[];
}

export function stageOf(s: Service): Stage | undefined {
  if (s.build === undefined) return undefined;
  const target = typeof s.build === "string" ? undefined : s.build.target;
  return target ? stages.find((st) => st.name === target) : stages.at(-1);
}

/**
 * Programs every stage has from its base image, denoland/deno:debian-*: Deno, and those of Debian's essential
 * packages (which every Debian image has). The program -> package pairs are checked against dpkg where it is.
 */
export const BASE_PROGRAMS: Record<string, string> = {
  deno: "denoland/deno",
  sleep: "coreutils",
  cat: "coreutils",
  id: "coreutils",
  sh: "dash",
  bash: "bash",
  setpriv: "util-linux",
  getent: "libc-bin",
};

/** The programs of the Debian packages docker/Dockerfile installs (a stage has them once it installs them). */
export const PACKAGE_PROGRAMS: Record<string, string[]> = {
  iproute2: ["ss", "ip"],
  procps: ["ps", "pkill"],
  nodejs: ["node"],
  python3: ["python3"],
  "python-is-python3": ["python"],
  lsof: ["lsof"],
  // a library, no program: libbpf.so.1, which the native eBPF engine opens (Deno FFI)
  libbpf1: [],
  mount: ["mount"],
};

/** The Debian packages a stage installs with `apt-get install` (its parents' included). */
export function packagesOf(stage: Stage): string[] {
  return inherited(stage, "RUN").flatMap((run) =>
    [...run.matchAll(/apt-get\s+install\s+([^&;|]*)/g)].flatMap((m) =>
      m[1].split(/\s+/).filter((w) => w !== "" && !w.startsWith("-"))
    )
  );
}

/** The programs a stage has: its base's, and those of the packages it installs. */
export function programsOf(stage: Stage): Set<string> {
  return new Set([
    ...Object.keys(BASE_PROGRAMS),
    ...packagesOf(stage).flatMap((p) => PACKAGE_PROGRAMS[p] ?? []),
  ]);
}

/** The program a deno command runs: the entry file, relative to the repository root. */
export function entryOf(cmd: string[]): string | undefined {
  if (cmd[0] !== "deno") return undefined;
  if (cmd[1] === "task") {
    const task = denoJson.tasks[cmd[2]];
    assert.ok(task, `deno.json has the task ${cmd[2]} (tasks: ${Object.keys(denoJson.tasks).join(", ")})`);
    const file = task.split(/\s+/).find((w) => /\.(ts|js|mjs)$/.test(w));
    assert.ok(file, `the task ${cmd[2]} runs a file: ${task}`);
    return file;
  }
  if (cmd[1] === "run") return cmd.slice(2).find((w) => !w.startsWith("-"));
  return undefined;
}

const graphCache = new Map<string, Set<string>>();

/** Environment variable names read by the local modules of `entry`'s module graph (`deno info --json`). */
export async function envReadBy(entry: string): Promise<Set<string>> {
  const cached = graphCache.get(entry);
  if (cached) return cached;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, `deno info ${entry}: ${new TextDecoder().decode(out.stderr)}`);
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as { modules: { specifier: string }[] };
  const names = new Set<string>();
  for (const m of info.modules) {
    if (!m.specifier.startsWith("file://")) continue;
    const text = Deno.readTextFileSync(fromFileUrl(m.specifier));
    // firstSet(env, "A", "B"), env.get("A"), setting(env, "A"), get("A"), pick("flag", "A")
    for (const call of text.matchAll(/\b(?:firstSet|get|setting|pick)\(([^()]*)\)/g)) {
      for (const lit of call[1].matchAll(/"([A-Z][A-Z0-9_]+)"/g)) names.add(lit[1]);
    }
  }
  graphCache.set(entry, names);
  return names;
}

/** Runs `cmd` in the repository root; its exit code and output. */
export async function run(cmd: string[], env?: Record<string, string>) {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    cwd: ROOT,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Whether `cmd` runs and succeeds here (false when it is not installed). */
export function tryRun(cmd: string[]): boolean {
  try {
    return new Deno.Command(cmd[0], { args: cmd.slice(1), stdout: "null", stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
}

const profiles = [...new Set(services.flatMap(([, s]) => s.profiles ?? []))].flatMap((p) => ["--profile", p]);

/** `<cli> config` of compose.yaml with every profile and no variable set (asserted to succeed): its output. */
export async function composeConfig(cli: string[], extra: string[] = []): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "portwatch-compose-config-" });
  try {
    const args = ["-f", `${ROOT}/compose.yaml`, "--project-directory", ROOT, ...profiles, "config", ...extra];
    const r = await run([...cli, ...args], { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", HOME: dir });
    assert.equal(r.code, 0, `${[...cli, ...args].join(" ")}: ${r.stderr}`);
    return r.stdout;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
