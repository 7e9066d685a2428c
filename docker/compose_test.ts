/**
 * compose.yaml against the code it runs: the seed's services, each in a container named as the service; no
 * `privileged: true` and no `cgroup:` (hardened hosts and compose v1 reject them); every environment variable is
 * one the service's program reads and its default passes the program's own config loader; volumes (defaults
 * resolved) hold the log, spool and snapshot, and the watchers' read-only views of the host are where the
 * watcher looks by default; LISTENER_URL, the published port and the healthcheck agree with the listener's port;
 * the testers idle in the tester stage; commands are deno tasks or files that answer `--help`, or programs their
 * stage has; build targets and images; the listener's healthcheck script answers for a real listener.
 * `docker compose config` and `docker-compose config -q` (compose v1) run when those CLIs are installed (they
 * need no Docker engine), else those tests are skipped, saying why. docker/dockerfile_test.ts checks the
 * Dockerfile itself.
 * @module
 */
import assert from "node:assert/strict";
import { envOf } from "../infra/env.ts";
import { waitUntil } from "../infra/wait.ts";
import { loadConfig } from "../listener/config.ts";
import { loadWatcherConfig } from "../watcher/config.ts";
import { deliveryConfigFromEnv } from "../delivery/delivery_config.ts";
import { loadEbpfConfig } from "../ebpf/config.ts";
import { RING_BYTES } from "../ebpf/libbpf/libbpf_source.ts";
import { traceeSettingsFromEnv } from "../ebpf/tracee/settings.ts";
import {
  cmdOf,
  commandOf,
  compose,
  composeConfig,
  dockerfilePath,
  entryOf,
  envOfService,
  envReadBy,
  inherited,
  LISTENER,
  onVolume,
  PG_SERVICES,
  programsOf,
  ROOT,
  run,
  SEED_SERVICES,
  type Service,
  services,
  stageOf,
  stages,
  TESTERS,
  tryRun,
  volumesOf,
  WATCHERS,
  withDefaults,
  workdirOf,
} from "./testing/compose_file.ts";

const listenerConfig = (s: Service) => {
  const config = loadConfig([], envOf(envOfService(s)));
  assert.ok(config !== "help", "the listener's settings are settings, not --help");
  return config;
};

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
    const deps = (s.depends_on ?? {}) as Record<string, { condition?: string }>;
    assert.ok(!Array.isArray(s.depends_on), `${name}: depends_on with conditions`);
    if (name !== LISTENER && !PG_SERVICES.includes(name)) {
      assert.equal(deps[LISTENER]?.condition, "service_healthy", `${name} waits for a healthy listener`);
    }
    for (const [dep, { condition }] of Object.entries(deps)) {
      assert.ok(compose.services[dep], `${name} depends on ${dep}, a service`);
      if (condition === "service_healthy") {
        assert.ok(
          compose.services[dep].healthcheck,
          `${name} waits for ${dep} to be healthy: it has a check`,
        );
      }
    }
  }
});

Deno.test("compose.yaml: every service of the seed runs in a container named as the service", () => {
  for (const name of [...SEED_SERVICES, "listner-api-2"]) {
    assert.equal(compose.services[name].container_name, name, `${name}: \`docker exec ${name} ...\` works`);
  }
  for (const [name, s] of services) {
    if (s.container_name !== undefined) assert.equal(s.container_name, name, `${name}: container_name`);
  }
});

Deno.test("compose.yaml: no privileged and no cgroup key; the eBPF watcher's explicit capabilities", () => {
  for (const [name, s] of services) {
    assert.equal(s.privileged, undefined, `${name}: no privileged: true (it fails on hardened hosts)`);
    assert.equal(s.cgroup, undefined, `${name}: no cgroup: key (compose v1 rejects it)`);
  }
  const ebpf = compose.services["ebpf-portwatcher"];
  for (const cap of ["SYS_ADMIN", "SYS_PTRACE"]) {
    assert.ok(ebpf.cap_add?.includes(cap), `ebpf-portwatcher: cap_add ${cap} (${ebpf.cap_add})`);
  }
  for (const opt of ["seccomp:unconfined", "apparmor:unconfined"]) {
    assert.ok(ebpf.security_opt?.includes(opt), `ebpf-portwatcher: security_opt ${opt}`);
  }
  assert.ok(
    compose.services.portwatcher.cap_add?.includes("SYS_PTRACE"),
    "portwatcher reads other /proc/<pid>",
  );
});

Deno.test("compose.yaml: every environment variable is one its service's program reads", async () => {
  // the scan is per program: the listener does not read the watcher's settings, the watcher does
  const listenerReads = await envReadBy("listener/main.ts");
  const watcherReads = await envReadBy("watcher/main.ts");
  assert.ok(
    listenerReads.has("LOG_PATH") && !listenerReads.has("SCAN_INTERVAL"),
    "the scan tells them apart",
  );
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

Deno.test("compose.yaml: the defaults pass the programs' own config loaders, and fit the volumes", () => {
  const listenerService = compose.services[LISTENER];
  const listener = listenerConfig(listenerService);
  assert.equal(listener.host, "0.0.0.0", "reachable from the other containers");
  assert.ok(onVolume(listener.logPath, listenerService), `LOG_PATH ${listener.logPath} is on a volume`);
  assert.ok(
    volumesOf(listenerService).some((v) => v.source === "./logs" && v.target === "/logs"),
    "the log is in ./logs on the host by default (LOGS_DIR), as the seed had it",
  );

  for (const name of WATCHERS) {
    const s = compose.services[name];
    const env = envOf(envOfService(s));
    const watcher = loadWatcherConfig([], env);
    assert.ok(watcher !== "help");
    const delivery = deliveryConfigFromEnv(env);
    assert.ok(delivery.url, `${name} delivers over HTTP`);
    assert.equal(envOfService(s).CONTAINER_NAME, name);
    // the design: one watcher sees every container through the host's pid namespace
    assert.equal(watcher.allNetns, true, `${name} watches every network namespace`);
    assert.equal(s.pid, "host", `${name}: WATCH_SCOPE=host needs the host's pid namespace`);
    assert.ok(
      onVolume(watcher.snapshotPath, s),
      `${name}: SNAPSHOT_PATH ${watcher.snapshotPath} is on a volume`,
    );
    assert.ok(delivery.spoolDir && onVolume(delivery.spoolDir, s), `${name}: SPOOL_PATH is on a volume`);
    for (const v of volumesOf(s)) {
      assert.ok(
        v.source.startsWith(".") || v.source.startsWith("/") || compose.volumes?.[v.source] !== undefined,
        `${name}: volume source ${v.source} is a path or a declared volume`,
      );
    }
  }
  const ebpfEnv = envOf(envOfService(compose.services["ebpf-portwatcher"]));
  const ebpf = loadEbpfConfig(ebpfEnv);
  assert.equal(ebpf.fallback, true, "the eBPF watcher falls back to polling");
  assert.equal(ebpf.engine, "auto", "EBPF_ENGINE: auto (libbpf, then Tracee, then bpftrace)");
  assert.equal(ebpf.ringBytes, RING_BYTES, "EBPF_RING_KB: the engine's default ring (1024 KiB)");
  traceeSettingsFromEnv(ebpfEnv);
});

Deno.test("compose.yaml: the watchers' read-only views of the host are where the watcher reads them", () => {
  const shared = (compose["x-watcher-volumes"] ?? []).map(withDefaults);
  assert.equal(shared.length, 2, "x-watcher-volumes: Docker's state and the host's name");
  for (const name of WATCHERS) {
    const s = compose.services[name];
    const watcher = loadWatcherConfig([], envOf(envOfService(s)));
    assert.ok(watcher !== "help");
    const raw = (s.volumes ?? []).map((v) => withDefaults(String(v)));
    for (const v of shared) assert.ok(raw.includes(v), `${name} mounts ${v} (x-watcher-volumes)`);
    const volumes = volumesOf(s);
    const state = volumes.find((v) => v.source === "/var/lib/docker/containers");
    assert.ok(state, `${name} mounts Docker's state (DOCKER_DATA_ROOT, default /var/lib/docker)/containers`);
    assert.equal(state.mode, "ro", `${name}: Docker's state is read-only`);
    assert.ok(
      watcher.containerStateDirs?.includes(state.target),
      `${name}: ${state.target} is one of the watcher's CONTAINER_STATE_DIRS (${watcher.containerStateDirs})`,
    );
    const hostname = volumes.find((v) => v.source === "/etc/hostname");
    assert.ok(hostname, `${name} mounts the host's /etc/hostname`);
    assert.equal(hostname.mode, "ro", `${name}: the host's name is read-only`);
    assert.equal(hostname.target, watcher.hostNameFile, `${name}: at the watcher's HOST_NAME_FILE`);
  }
});

Deno.test("compose.yaml: LISTENER_URL, the published port and the healthcheck agree with listner-api", async () => {
  const listenerService = compose.services[LISTENER];
  const listener = listenerConfig(listenerService);
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
  assert.deepEqual(
    published,
    ["127.0.0.1:8080:8080"],
    "published on localhost by default (LISTENER_PUBLISH)",
  );
  for (const p of published) {
    assert.equal(Number(p.split(":").at(-1)), listener.port, `published ${p} maps to LISTENER_PORT`);
  }
  const exposed = inherited(stageOf(listenerService)!, "EXPOSE");
  assert.ok(exposed.includes(String(listener.port)), `the listener stage EXPOSEs ${listener.port}`);
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
  const config = listenerConfig(second);
  const first = listenerConfig(compose.services[LISTENER]);
  assert.equal(first.storeUrl, undefined, "a plain up keeps the JSON-lines log");
  assert.ok(config.storeUrl, "the replica stores in PostgreSQL by default");
  const url = new URL(envOfService(second).STORE_URL);
  const pgEnv = envOfService(pg);
  assert.equal(url.hostname, "postgres", "STORE_URL names the postgres service");
  assert.equal(url.username, pgEnv.POSTGRES_USER);
  assert.equal(decodeURIComponent(url.password), pgEnv.POSTGRES_PASSWORD);
  assert.equal(url.pathname, `/${pgEnv.POSTGRES_DB}`);
  assert.equal(config.port, first.port, "both replicas listen on the port LISTENER_URL names");
  const aliases = second.networks as { default?: { aliases?: string[] } };
  assert.deepEqual(aliases.default?.aliases, [LISTENER], "DNS round-robin under the listener's name");
  const deps = second.depends_on as Record<string, { condition?: string }>;
  assert.equal(deps.postgres?.condition, "service_healthy");
  assert.ok((pg.healthcheck?.test as string[]).includes("pg_isready"));
  assert.ok(pg.volumes?.some((v) => String(v).endsWith(":/var/lib/postgresql/data")), "the data survive");
});

Deno.test("compose.yaml: the testers idle in the tester stage (node, python, lsof, deno); 3000 published", () => {
  for (const name of TESTERS) {
    const s = compose.services[name];
    assert.ok(typeof s.build === "object" && s.build.target === "tester", `${name} builds target tester`);
    assert.deepEqual(s.command, ["sleep", "infinity"], `${name} idles until exec'd into`);
    assert.equal(s.healthcheck, undefined, `${name}: no healthcheck (nothing listens until a tester runs)`);
    const programs = programsOf(stageOf(s)!);
    for (const p of ["node", "python", "lsof", "deno", "sleep"]) {
      assert.ok(programs.has(p), `${name}: the tester stage has ${p} (${[...programs]})`);
    }
  }
  const ports = (compose.services["nodejs-tester"].ports ?? []).map((p) => withDefaults(String(p)));
  assert.deepEqual(
    ports,
    ["127.0.0.1:3000:3000"],
    "nodejs-tester publishes 3000 on localhost (TESTER_PUBLISH)",
  );
  const exposed = inherited(stages.find((s) => s.name === "tester")!, "EXPOSE");
  assert.ok(exposed.includes("3000"), "the tester stage EXPOSEs 3000");
});

Deno.test("commands: a deno task or file that answers --help, or a program of the service's stage", async () => {
  for (const [name, s] of services) {
    const cmd = commandOf(s);
    const stage = stageOf(s);
    if (stage) {
      assert.deepEqual(cmdOf(stage), cmd, `${name}: the ${stage.name} stage's CMD is the service's command`);
    }
    const entry = entryOf(cmd);
    if (entry === undefined) {
      assert.notEqual(cmd[0], "deno", `${name}: ${cmd.join(" ")} is a deno task or file`);
      if (stage === undefined) {
        assert.ok(s.image, `${name} runs ${cmd[0]} from its image`);
        continue;
      }
      assert.ok(programsOf(stage).has(cmd[0]), `${name}: the ${stage.name} stage has ${cmd[0]}`);
      continue;
    }
    assert.ok(Deno.statSync(`${ROOT}/${entry}`).isFile, `${name}: ${entry} exists`);
    const help = cmd[1] === "task" ? [...cmd, "--help"] : [cmd[0], "run", "-A", entry, "--help"];
    const r = await run([Deno.execPath(), ...help.slice(1)]);
    assert.equal(r.code, 0, `${name}: ${help.join(" ")} exits 0\n${r.stderr}`);
    assert.ok(r.stdout.trim() !== "", `${name}: ${help.join(" ")} prints its usage`);
  }
});

Deno.test("build: every build names docker/Dockerfile and one of its stages; images are pinned arguments", () => {
  const standIns = Deno.readTextFileSync(`${ROOT}/docker/base/build.sh`);
  for (const [name, s] of services) {
    if (s.build === undefined) {
      const image = s.image ?? "";
      assert.match(image, /^\$\{[A-Z_]+_IMAGE:-[^}]+\}$/, `${name}: the image is a variable with a default`);
      const resolved = withDefaults(image);
      assert.match(resolved, /^[\w./-]+:[\w.-]+$/, `${name}: an image with a tag`);
      assert.doesNotMatch(resolved, /:latest$/, `${name}: a pinned image`);
      assert.ok(standIns.includes(resolved), `${name}: just docker-base builds a stand-in for ${resolved}`);
      continue;
    }
    assert.ok(typeof s.build === "object", `${name}: build with context, dockerfile and target`);
    assert.equal(s.build.context, ".", `${name}: the repository root is the context`);
    assert.equal(`${ROOT}/${s.build.dockerfile}`, dockerfilePath, `${name}: builds docker/Dockerfile`);
    const target = s.build.target;
    assert.ok(
      stages.some((st) => st.name === target),
      `${name}: target ${target} is a stage of ${s.build.dockerfile} (${stages.map((st) => st.name)})`,
    );
  }
});

Deno.test("healthchecks: the listener's script is a file of the image and answers for a real listener", async () => {
  const dir = await Deno.makeTempDir({ prefix: "portwatch-compose-test-" });
  try {
    for (const [name, s] of services.filter(([, s]) => s.healthcheck && s.build)) {
      const test = s.healthcheck?.test as string[];
      assert.equal(test[0], "CMD", `${name}: exec-form healthcheck`);
      const stage = stageOf(s)!;
      assert.ok(programsOf(stage).has(test[1]), `${name}: the ${stage.name} stage has ${test[1]}`);
      const workdir = workdirOf(stage);
      const script = test.find((w) => w.startsWith(`${workdir}/`));
      assert.ok(script, `${name}: the healthcheck runs a file of the image: ${test.join(" ")}`);
      assert.ok(Deno.statSync(`${ROOT}/${script.slice(workdir.length + 1)}`).isFile, `${name}: ${script}`);
    }
    // Run the listener's own command on a free port here, then its healthcheck with that port.
    const s = compose.services[LISTENER];
    const test = s.healthcheck?.test as string[];
    const local = `${ROOT}/docker/healthcheck.sh`;
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    l.close();
    const env = { ...envOfService(s), LISTENER_PORT: String(port), LOG_PATH: `${dir}/listener.log` };
    const check = test.slice(1).map((w) => w.endsWith("/docker/healthcheck.sh") ? local : w)
      .map((w) => (w === "8080" ? String(port) : w));
    const child = new Deno.Command(Deno.execPath(), {
      args: commandOf(s).slice(1),
      cwd: ROOT,
      env,
      stdout: "null",
      stderr: "piped",
    }).spawn();
    try {
      let last = { code: -1, stdout: "", stderr: "" };
      await waitUntil(
        () => `${LISTENER}: ${check.join(" ")} to succeed (last: ${last.stderr.trim()})`,
        async () => (last = await run(check)).code === 0,
        10_000,
        100,
      );
    } finally {
      child.kill("SIGTERM");
      await child.stderr.cancel();
      await child.status;
    }
    const down = await run(check);
    assert.equal(down.code, 1, `${LISTENER}: unhealthy once stopped`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const v2 = tryRun(["docker", "compose", "version"]) ? undefined : "`docker compose` is not installed";
const v1 = tryRun(["docker-compose", "version"]) ? undefined : "`docker-compose` is not installed";
if (v2) console.log(`docker/compose_test.ts: skipping \`docker compose config\`: ${v2}`);
if (v1) console.log(`docker/compose_test.ts: skipping \`docker-compose config -q\`: ${v1}`);

Deno.test({
  name: "docker compose config accepts compose.yaml with every profile (no Docker engine needed)",
  ignore: v2 !== undefined,
  async fn() {
    const stdout = await composeConfig(["docker", "compose"]);
    for (const name of [...SEED_SERVICES, ...PG_SERVICES]) {
      assert.match(stdout, new RegExp(`^  ${name}:`, "m"), `docker compose config lists ${name}`);
    }
    assert.match(stdout, /LISTENER_URL: http:\/\/listner-api:8080\/ingest/);
    assert.match(stdout, /container_name: portwatcher/);
  },
});

Deno.test({
  name: "docker-compose config -q (compose v1) accepts compose.yaml with every profile",
  ignore: v1 !== undefined,
  async fn() {
    const stdout = await composeConfig(["docker-compose"], ["-q"]);
    assert.equal(stdout.trim(), "", "config -q prints nothing when the file is valid");
  },
});
