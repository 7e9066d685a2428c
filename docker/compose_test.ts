/**
 * compose.yaml, docker/Dockerfile and .dockerignore against the code they run: the seed's services exist; every
 * environment variable is one the service's program reads (found in the source of its module graph) and its
 * default passes the program's own config loader; commands name existing deno tasks and files and answer
 * `--help`; LISTENER_URL, the published port and the healthcheck agree with the listener's port; build targets
 * exist in the Dockerfile; the healthcheck script answers for a real listener and tester. `docker compose
 * config` runs when a compose CLI is installed (it needs no Docker engine), else that test is skipped, saying
 * why. No image is built here: that needs an engine.
 * @module
 */
import assert from "node:assert/strict";
import { fileURLToPath as fromFileUrl } from "node:url";
import { parse } from "yaml";
import { envOf } from "../events/env.ts";
import { loadConfig } from "../listener/config.ts";
import { loadWatcherConfig } from "../watcher/config.ts";
import { deliveryConfigFromEnv } from "../events/delivery_config.ts";
import { loadEbpfConfig } from "../ebpf/config.ts";
import { traceeSettingsFromEnv } from "../ebpf/tracee/settings.ts";

const ROOT = fromFileUrl(new URL("../", import.meta.url)).replace(/\/$/, "");
const LISTENER = "listner-api";
const SEED_SERVICES = [LISTENER, "portwatcher", "ebpf-portwatcher", "nodejs-tester", "python-tester"];
/** The store tier of `--profile pg`: a second listener replica and PostgreSQL. */
const PG_SERVICES = ["listner-api-2", "postgres"];

type Json = Record<string, unknown>;
interface Service {
  build?: { context?: string; dockerfile?: string; target?: string } | string;
  image?: string;
  command?: string[] | string;
  environment?: Record<string, string | number | boolean | null> | string[];
  healthcheck?: { test?: string[] | string };
  ports?: (string | Json)[];
  volumes?: (string | Json)[];
  profiles?: string[];
  pid?: string;
  depends_on?: Record<string, { condition?: string }> | string[];
}

const compose = parse(Deno.readTextFileSync(`${ROOT}/compose.yaml`), { merge: true }) as {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
};
const denoJson = JSON.parse(Deno.readTextFileSync(`${ROOT}/deno.json`)) as { tasks: Record<string, string> };
const services = Object.entries(compose.services);

/** `${NAME:-default}`, `${NAME-default}`, `${NAME}` as compose resolves them with NAME unset; `$$` is `$`. */
function withDefaults(value: string): string {
  return value
    .replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}/g, (_m, _name, def) => def ?? "")
    .replace(/\$\$/g, "$");
}

/** A service's environment, defaults resolved. */
function envOfService(s: Service): Record<string, string> {
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

function commandOf(s: Service): string[] {
  assert.ok(Array.isArray(s.command), "commands are written in exec form (a list)");
  return s.command;
}

/** A Dockerfile stage. */
interface Stage {
  name: string;
  from: string;
  instructions: { op: string; args: string }[];
}

/** The stages of a Dockerfile (comments dropped, continuation lines joined). */
function dockerfileStages(text: string): Stage[] {
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
    }
  }
  return stages;
}

const dockerfilePath = `${ROOT}/docker/Dockerfile`;
const stages = dockerfileStages(Deno.readTextFileSync(dockerfilePath));

/** Every instruction `op` of a stage, its parents' first (FROM <stage> chains). */
function inherited(stage: Stage, op: string): string[] {
  const parent = stages.find((s) => s.name === stage.from);
  const own = stage.instructions.filter((i) => i.op === op).map((i) => i.args);
  return [...(parent ? inherited(parent, op) : []), ...own];
}

function workdirOf(stage: Stage): string {
  const w = inherited(stage, "WORKDIR").at(-1);
  assert.ok(w, `stage ${stage.name} sets a WORKDIR`);
  return w.replace(/\/$/, "");
}

/** ENV names of a stage (ENV A=1 B=2 and the old ENV A 1). */
function envNames(stage: Stage): string[] {
  return inherited(stage, "ENV").flatMap((args) => {
    const pairs = [...args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=/g)].map((m) => m[1]);
    return pairs.length > 0 ? pairs : [args.split(/\s+/)[0]];
  });
}

function stageOf(s: Service): Stage | undefined {
  if (s.build === undefined) return undefined;
  const target = typeof s.build === "string" ? undefined : s.build.target;
  return target ? stages.find((st) => st.name === target) : stages.at(-1);
}

/** The program a deno command runs: the entry file, relative to the repository root. */
function entryOf(cmd: string[]): string | undefined {
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
async function envReadBy(entry: string): Promise<Set<string>> {
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

async function run(cmd: string[], env?: Record<string, string>) {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    cwd: ROOT,
    env,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function tryRun(cmd: string[]): boolean {
  try {
    return new Deno.Command(cmd[0], { args: cmd.slice(1), stdout: "null", stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
}

Deno.test("compose.yaml: the seed's services, the listener under the seed's spelling listner-api", () => {
  for (const name of SEED_SERVICES) assert.ok(compose.services[name], `service ${name} exists`);
  assert.deepEqual(
    compose.services["ebpf-portwatcher"].profiles,
    ["ebpf"],
    "the eBPF watcher needs --profile ebpf",
  );
  for (const name of SEED_SERVICES.filter((n) => n !== "ebpf-portwatcher")) {
    assert.equal(compose.services[name].profiles, undefined, `${name} starts with a plain up`);
  }
  for (const [name, s] of services) {
    if (name === LISTENER || PG_SERVICES.includes(name)) continue;
    const deps = s.depends_on as Record<string, { condition?: string }> | undefined;
    assert.equal(deps?.[LISTENER]?.condition, "service_healthy", `${name} waits for a healthy listener`);
  }
});

Deno.test("compose.yaml: every environment variable is one its service's program reads", async () => {
  // the scan is per program: the listener does not read the watcher's settings, the watcher does
  const listenerReads = await envReadBy("listener/main.ts");
  const watcherReads = await envReadBy("watcher/main.ts");
  assert.ok(listenerReads.has("LOG_PATH") && !listenerReads.has("SCAN_INTERVAL"));
  for (
    const v of ["SCAN_INTERVAL", "WATCH_PORTS", "SPOOL_PATH", "CONTAINER_NAME", "HOST_NAME", "LISTENER_URL"]
  ) {
    assert.ok(watcherReads.has(v), `the scan finds ${v} in the watcher's modules`);
  }
  for (const [name, s] of services) {
    const env = Object.keys(envOfService(s));
    const entry = entryOf(commandOf(s));
    if (entry === undefined) {
      // an image's own settings only (postgres: POSTGRES_*)
      const own = env.filter((v) => !(name === "postgres" && v.startsWith("POSTGRES_")));
      assert.deepEqual(own, [], `${name} runs no portwatch program, so it takes no portwatch settings`);
      continue;
    }
    const read = await envReadBy(entry);
    const unread = env.filter((v) => !read.has(v));
    assert.deepEqual(
      unread,
      [],
      `${name} (${entry}) does not read ${unread.join(", ")}; it reads ${[...read]}`,
    );
  }
});

Deno.test("docker/Dockerfile: each stage's ENV is read by the program it runs, or by docker/entrypoint.sh", async () => {
  const entrypoint = Deno.readTextFileSync(`${ROOT}/docker/entrypoint.sh`);
  for (const stage of stages.filter((s) => inherited(s, "CMD").length > 0)) {
    const cmd = JSON.parse(inherited(stage, "CMD").at(-1)!) as string[];
    const entry = entryOf(cmd);
    assert.ok(entry, `stage ${stage.name} runs a deno program: ${cmd.join(" ")}`);
    assert.ok(Deno.statSync(`${ROOT}/${entry}`).isFile, `${stage.name}: ${entry} exists`);
    const read = await envReadBy(entry);
    for (const v of envNames(stage)) {
      if (v.startsWith("DENO_") || v === "DEBIAN_FRONTEND") continue; // the tools'
      if (v.startsWith("PORTWATCH_")) {
        assert.ok(entrypoint.includes(v), `${stage.name}: ${v} is read by docker/entrypoint.sh`);
        continue;
      }
      assert.ok(read.has(v), `${stage.name}: ${entry} reads ${v}`);
    }
  }
});

Deno.test("compose.yaml: the defaults pass the programs' own config loaders, and fit the mounts", () => {
  const listenerEnv = envOfService(compose.services[LISTENER]);
  const listener = loadConfig([], envOf(listenerEnv));
  assert.ok(listener !== "help");
  assert.equal(listener.host, "0.0.0.0", "reachable from the other containers");
  const mounts = (s: Service) =>
    (s.volumes ?? []).map((v) => typeof v === "string" ? v.split(":")[1] : String((v as Json).target));
  const under = (path: string, s: Service) => mounts(s).some((m) => path === m || path.startsWith(`${m}/`));
  assert.ok(
    under(listener.logPath, compose.services[LISTENER]),
    `LOG_PATH ${listener.logPath} is on a volume`,
  );
  assert.ok(mounts(compose.services[LISTENER]).includes("/logs"));
  assert.ok(
    compose.services[LISTENER].volumes?.includes("./logs:/logs"),
    "the log is in ./logs on the host, as the seed had it",
  );

  for (const name of ["portwatcher", "ebpf-portwatcher"]) {
    const s = compose.services[name];
    const env = envOf(envOfService(s));
    const watcher = loadWatcherConfig([], env);
    assert.ok(watcher !== "help");
    const delivery = deliveryConfigFromEnv(env);
    assert.ok(delivery.url, `${name} delivers over HTTP`);
    assert.equal(envOfService(s).CONTAINER_NAME, name);
    // the design: one watcher sees every container through the host's pid namespace
    assert.equal(watcher.allNetns, true, `${name} watches every network namespace`);
    assert.equal(
      s.pid,
      "host",
      `${name}: WATCH_SCOPE=host needs the host's pid namespace to see other containers`,
    );
    assert.ok(
      under(watcher.snapshotPath, s),
      `${name}: SNAPSHOT_PATH ${watcher.snapshotPath} is on a volume`,
    );
    assert.ok(delivery.spoolDir && under(delivery.spoolDir, s), `${name}: SPOOL_PATH is on a volume`);
    for (const m of mounts(s)) {
      if (!m.startsWith("/sys/")) {
        const vol = (s.volumes ?? []).map(String).find((v) => v.endsWith(`:${m}`))!.split(":")[0];
        assert.ok(vol.startsWith(".") || vol.startsWith("/") || compose.volumes?.[vol] !== undefined);
      }
    }
  }
  const ebpfEnv = envOf(envOfService(compose.services["ebpf-portwatcher"]));
  const ebpf = loadEbpfConfig(ebpfEnv);
  assert.equal(ebpf.fallback, true);
  traceeSettingsFromEnv(ebpfEnv);
  assert.equal((compose.services["ebpf-portwatcher"] as Json).privileged, true);
});

Deno.test("compose.yaml: LISTENER_URL, the published port and the healthcheck agree with listner-api", async () => {
  const listenerService = compose.services[LISTENER];
  const listener = loadConfig([], envOf(envOfService(listenerService)));
  assert.ok(listener !== "help");
  const app = await Deno.readTextFile(`${ROOT}/listener/app.ts`);
  for (const [name, s] of services) {
    const value = envOfService(s).LISTENER_URL;
    if (value === undefined) continue;
    const url = new URL(value);
    assert.equal(url.hostname, LISTENER, `${name}: LISTENER_URL names the listener's service`);
    assert.equal(Number(url.port || 80), listener.port, `${name}: LISTENER_URL has the listener's port`);
    assert.ok(app.includes(`"${url.pathname}"`), `${name}: the listener serves ${url.pathname}`);
  }
  const published = (listenerService.ports ?? []).map((p) => withDefaults(String(p)));
  assert.ok(published.length > 0, "the listener's port is published");
  for (const p of published) {
    assert.equal(Number(p.split(":").at(-1)), listener.port, `published ${p} maps to LISTENER_PORT`);
  }
  const test = listenerService.healthcheck?.test as string[];
  assert.ok(
    test.includes(String(listener.port)) && test.includes("/healthz"),
    `healthcheck: ${test.join(" ")}`,
  );
});

Deno.test("compose.yaml --profile pg: two listener replicas over one PostgreSQL, both named listner-api", () => {
  const second = compose.services["listner-api-2"];
  const pg = compose.services.postgres;
  for (const name of PG_SERVICES) {
    assert.deepEqual(compose.services[name].profiles, ["pg"], `${name} starts only with --profile pg`);
  }
  const config = loadConfig([], envOf(envOfService(second)));
  assert.ok(config !== "help");
  const first = loadConfig([], envOf(envOfService(compose.services[LISTENER])));
  assert.ok(first !== "help");
  assert.equal(first.storeUrl, undefined, "a plain up keeps the JSON-lines log");
  assert.ok(config.storeUrl, "the replica stores in PostgreSQL by default");
  const url = new URL(envOfService(second).STORE_URL);
  const pgEnv = envOfService(pg);
  assert.equal(url.hostname, "postgres", "STORE_URL names the postgres service");
  assert.equal(url.username, pgEnv.POSTGRES_USER);
  assert.equal(decodeURIComponent(url.password), pgEnv.POSTGRES_PASSWORD);
  assert.equal(url.pathname, `/${pgEnv.POSTGRES_DB}`);
  assert.equal(config.port, first.port, "both replicas listen on the port LISTENER_URL names");
  const aliases = (second as Json).networks as { default?: { aliases?: string[] } };
  assert.deepEqual(aliases.default?.aliases, [LISTENER], "DNS round-robin under the listener's name");
  const deps = second.depends_on as Record<string, { condition?: string }>;
  assert.equal(deps.postgres?.condition, "service_healthy");
  assert.ok((pg.healthcheck?.test as string[]).includes("pg_isready"));
  assert.ok(pg.volumes?.some((v) => String(v).endsWith(":/var/lib/postgresql/data")), "the data survive");
});

Deno.test("commands: each service runs an existing deno task or file, which answers --help", async () => {
  for (const [name, s] of services) {
    const cmd = commandOf(s);
    const entry = entryOf(cmd);
    if (entry === undefined) {
      assert.ok(s.image && s.build === undefined, `${name} runs ${cmd[0]} from its image ${s.image}`);
      continue;
    }
    assert.ok(Deno.statSync(`${ROOT}/${entry}`).isFile, `${name}: ${entry} exists`);
    const help = cmd[1] === "task" ? [...cmd, "--help"] : [cmd[0], "run", "-A", entry, "--help"];
    const r = await run([Deno.execPath(), ...help.slice(1)]);
    assert.equal(r.code, 0, `${name}: ${help.join(" ")} exits 0\n${r.stderr}`);
    assert.ok(r.stdout.trim() !== "", `${name}: ${help.join(" ")} prints its usage`);
  }
});

Deno.test("build: Dockerfile and targets exist, the Deno image is pinned as the README pins Deno", () => {
  const readme = Deno.readTextFileSync(`${ROOT}/README.md`);
  const pinned = /deno@(\d+\.\d+\.\d+)/.exec(readme)?.[1];
  assert.ok(pinned, "the README pins a Deno version");
  const bases = stages.filter((s) => !stages.some((o) => o.name === s.from)).map((s) => s.from);
  assert.deepEqual([...new Set(bases)], [`denoland/deno:debian-${pinned}`]);
  for (const [name, s] of services) {
    if (s.build === undefined) {
      assert.match(s.image ?? "", /^[\w./-]+:[\w.-]+$/, `${name}: an image with a tag`);
      assert.doesNotMatch(s.image!, /:latest$/, `${name}: a pinned image`);
      continue;
    }
    assert.ok(typeof s.build === "object", `${name}: build with context, dockerfile and target`);
    assert.equal(s.build.context, ".", `${name}: the repository root is the context`);
    assert.ok(Deno.statSync(`${ROOT}/${s.build.dockerfile}`).isFile, `${name}: ${s.build.dockerfile} exists`);
    assert.equal(`${ROOT}/${s.build.dockerfile}`, dockerfilePath);
    const target = s.build.target;
    assert.ok(
      stages.some((st) => st.name === target),
      `${name}: target ${target} is a stage of ${s.build.dockerfile} (${
        stages.map((st) => st.name).join(", ")
      })`,
    );
  }
  // COPY sources other than the whole context exist.
  for (const stage of stages) {
    for (const copy of inherited(stage, "COPY")) {
      const words = copy.split(/\s+/).filter((w) => !w.startsWith("--"));
      for (const src of words.slice(0, -1)) {
        if (src !== ".") assert.ok(Deno.statSync(`${ROOT}/${src}`), `COPY source ${src} exists`);
      }
    }
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

Deno.test(".dockerignore keeps what the image runs", () => {
  const patterns = Deno.readTextFileSync(`${ROOT}/.dockerignore`).split("\n").map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  assert.ok(!patterns.some((p) => p.startsWith("!")), "no exceptions: the matcher here does not model them");
  const needed = ["deno.json", "deno.lock", "docker/entrypoint.sh", "docker/healthcheck.sh", "start.ts"];
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

Deno.test("healthchecks: the scripts exist and answer for a real listener and tester", async () => {
  const free = () => {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    l.close();
    return port;
  };
  const dir = await Deno.makeTempDir({ prefix: "portwatch-compose-test-" });
  try {
    for (const name of [LISTENER, "nodejs-tester"]) {
      const s = compose.services[name];
      const test = s.healthcheck?.test as string[];
      assert.equal(test[0], "CMD", `${name}: exec-form healthcheck`);
      const workdir = workdirOf(stageOf(s)!);
      const script = test.find((w) => w.startsWith(`${workdir}/`));
      assert.ok(script, `${name}: the healthcheck runs a file of the image: ${test.join(" ")}`);
      const local = `${ROOT}/${script.slice(workdir.length + 1)}`;
      assert.ok(Deno.statSync(local).isFile, `${name}: ${local} exists`);
      // Run the service's own command on a free port here, then its healthcheck with that port.
      const port = free();
      const cmd = commandOf(s).map((w) => (w === "3000" ? String(port) : w));
      const env = { ...envOfService(s), LISTENER_PORT: String(port), LOG_PATH: `${dir}/${name}.log` };
      const check = test.slice(1).map((w) => (w === script ? local : w)).map((w) =>
        w === "8080" || w === "3000" ? String(port) : w
      );
      const child = new Deno.Command(Deno.execPath(), {
        args: cmd.slice(1),
        cwd: ROOT,
        env,
        stdout: "null",
        stderr: "piped",
      }).spawn();
      try {
        let last = { code: -1, stdout: "", stderr: "" };
        for (let i = 0; i < 100 && last.code !== 0; i++) {
          last = await run(check);
          if (last.code !== 0) await new Promise((r) => setTimeout(r, 100));
        }
        assert.equal(last.code, 0, `${name}: ${check.join(" ")}: ${last.stderr}`);
      } finally {
        child.kill("SIGTERM");
        await child.stderr.cancel();
        await child.status;
      }
      const down = await run(check);
      assert.equal(down.code, 1, `${name}: unhealthy once stopped`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const rootReason = Deno.uid() !== 0
  ? "needs root"
  : !tryRun(["id", "nobody"])
  ? "no user nobody"
  : !tryRun(["setpriv", "--version"])
  ? "no setpriv"
  : undefined;
if (rootReason) console.log(`docker/compose_test.ts: skipping the entrypoint test: ${rootReason}`);

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
      assert.equal(Number(r.stdout.trim()), nobody);
      assert.equal(Deno.statSync(logs).uid, nobody);
      const plain = await run(["sh", `${ROOT}/docker/entrypoint.sh`, "id", "-u"], { PATH: "/usr/bin:/bin" });
      assert.equal(plain.stdout.trim(), "0", "without PORTWATCH_USER the command runs as is");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** Which compose CLI can validate here: v2 (`docker compose`), else v1 (`docker-compose`), else why not. */
function composeCli(): { cmd: string[]; v1: boolean } | string {
  if (tryRun(["docker", "compose", "version"])) return { cmd: ["docker", "compose"], v1: false };
  if (tryRun(["docker-compose", "version"])) return { cmd: ["docker-compose"], v1: true };
  return "neither `docker compose` (v2 plugin) nor `docker-compose` is installed";
}
const cli = composeCli();
if (typeof cli === "string") {
  console.log(`docker/compose_test.ts: skipping \`docker compose config\`: ${cli}`);
}

Deno.test({
  name: "docker compose config accepts compose.yaml (no Docker engine needed)",
  ignore: typeof cli === "string",
  async fn() {
    if (typeof cli === "string") return;
    let file = `${ROOT}/compose.yaml`;
    const dir = await Deno.makeTempDir({ prefix: "portwatch-compose-config-" });
    try {
      if (cli.v1) {
        // docker-compose 1.x predates the `cgroup` key (compose spec, docker compose 2.x): check the rest.
        file = `${dir}/compose.yaml`;
        const text = Deno.readTextFileSync(`${ROOT}/compose.yaml`);
        await Deno.writeTextFile(file, text.replace(/^\s+cgroup: host\n/gm, ""));
        console.log("docker-compose 1.x: validating compose.yaml without its `cgroup: host` keys");
      }
      const r = await run([
        ...cli.cmd,
        "-f",
        file,
        "--project-directory",
        ROOT,
        "--profile",
        "ebpf",
        "config",
      ], {
        PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
        HOME: dir,
      });
      assert.equal(r.code, 0, r.stderr);
      for (const name of SEED_SERVICES) assert.match(r.stdout, new RegExp(`^  ${name}:`, "m"));
      assert.match(r.stdout, /LISTENER_URL: http:\/\/listner-api:8080\/ingest/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
