/**
 * The compose stack under a real Docker engine: built from the stand-in base images (`just docker-base`),
 * brought up with the compose CLI there is, then driven by the seed's own `docker exec` commands and by the
 * Justfile's recipes in Docker mode, every event checked against `docker inspect` (full id, name, image,
 * compose project and service) and its source. Then the log's common ops, a watcher killed and restarted by its
 * restart policy (nothing lost or doubled), `docker stop portwatcher` (shutdown closes), the pg profile with two
 * listener replicas over one PostgreSQL, the ebpf profile with explicit capabilities (its native libbpf engine,
 * and an image no larger than the watcher's but for libbpf1), and every container
 * stopping on SIGTERM within 2 s. Everything is removed at the end, also when a step fails: containers,
 * volumes and networks (`down -v`), the test's log folder, and the engine with the host's iptables when the test
 * started it. Skips, saying why, where no engine can run. Published ports are free ones of the test's, so a
 * stack of the user's on 8080 does not matter, but the container names are the seed's: the test skips when
 * containers of those names exist.
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  childrenOf,
  composeCli,
  count,
  engine,
  existing,
  freePort,
  inspect,
  liveSkipReason,
  NAMES,
  networkState,
  ok,
  PROFILE_NAMES,
  ROOT,
  run,
  type Stored,
  waitEvents,
} from "./testing/live.ts";
import { skipIf } from "../testing/netns.ts";
import { waitUntil } from "../infra/wait.ts";
import { inListener, killHolder, nodeServer, openedOnce, seedClose } from "./testing/seed.ts";

const NAME = "compose stack under a real Docker engine: seed commands, just recipes, restarts, profiles";
const skip = await liveSkipReason();
const PROJECT = "pwlive";
const PG_URL = "postgres://portwatch:portwatch@postgres:5432/portwatch";

Deno.test({
  name: NAME,
  ignore: skipIf(skip, NAME),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const network = await networkState();
    const eng = await engine();
    const taken = await existing([...NAMES, ...PROFILE_NAMES]);
    if (taken.length > 0) {
      console.log(`skipping the live stack: containers named ${taken.join(", ")} exist (a stack of yours?)`);
      await eng.stop();
      return;
    }
    const logs = await Deno.makeTempDir({ prefix: "portwatch-live-logs-" });
    const listenerPort = freePort();
    const testerPort = freePort();
    const listener = `http://127.0.0.1:${listenerPort}`;
    const env: Record<string, string> = {
      COMPOSE_PROJECT_NAME: PROJECT,
      LOGS_DIR: logs,
      LISTENER_PUBLISH: `127.0.0.1:${listenerPort}`,
      TESTER_PUBLISH: `127.0.0.1:${testerPort}`,
      DOCKER_DATA_ROOT: eng.dataRoot,
      // the stack's recipes (stack/main.ts) in Docker mode, against this listener
      PORTWATCH_RUNTIME: "docker",
      LISTENER: listener,
    };
    const cli = await composeCli();
    const compose = (...args: string[]) => ok([...cli, "-f", join(ROOT, "compose.yaml"), ...args], env);
    const profiles = ["--profile", "ebpf", "--profile", "pg"];
    const pgEnv = { ...env, STORE_URL: PG_URL };
    const timings: string[] = [];
    try {
      await t.step(
        "base images: local stand-ins where the registry is unreachable (just docker-base)",
        async () => {
          const start = Date.now();
          await ok(["bash", join(ROOT, "docker/base/build.sh")]);
          timings.push(`docker-base ${Date.now() - start} ms`);
          for (const image of ["denoland/deno:debian-2.9.6", "postgres:15-bookworm"]) {
            assert.equal((await run(["docker", "image", "inspect", image])).code, 0, `${image} is there`);
          }
        },
      );

      await t.step(`${cli.join(" ")} up -d --build: the seed's containers, listener healthy`, async () => {
        const start = Date.now();
        await compose("up", "-d", "--build");
        timings.push(`up --build ${Date.now() - start} ms`);
        await waitUntil(
          "listener healthy",
          async () => {
            try {
              return (await fetch(`${listener}/healthz`).then(async (r) => (await r.body?.cancel(), r.ok)));
            } catch {
              return false;
            }
          },
          60_000,
          250,
        );
        for (const name of NAMES) assert.ok((await inspect(name)).running, `${name} is running`);
        // the watcher is up once it has reported the listener's own port
        await openedOnce(listener, 8080, "listner-api", { closed: false });
      });

      await t.step(
        "images: the legacy builder and BuildKit build each target; none but ebpf builds the ebpf stage",
        async () => {
          const build = (target: string, extra: Record<string, string>, docker = "docker") =>
            run([
              docker,
              "build",
              "-f",
              "docker/Dockerfile",
              "--target",
              target,
              "-t",
              `pwlive-${target}`,
              ".",
            ], {
              ...env,
              ...extra,
            });
          for (const target of ["listener", "watcher", "tester"]) {
            const legacy = await build(target, { DOCKER_BUILDKIT: "0" });
            assert.equal(legacy.code, 0, `legacy build of ${target}: ${legacy.stderr.slice(-2000)}`);
            assert.doesNotMatch(
              legacy.stdout,
              /\bAS ebpf\b/i,
              `the legacy builder's ${target} skips the ebpf stage`,
            );
          }
          // BuildKit: the docker CLI's own (20.10), or the one that has buildx; else said and skipped
          let buildkit: Awaited<ReturnType<typeof build>> | undefined;
          for (const docker of ["docker", "/usr/bin/docker"]) {
            buildkit = await build("tester", { DOCKER_BUILDKIT: "1" }, docker).catch(() => undefined);
            if (buildkit && !/buildx/.test(buildkit.stderr)) break;
          }
          if (!buildkit || /buildx/.test(buildkit.stderr)) {
            console.log(
              "BuildKit build skipped: no docker CLI here builds with BuildKit (buildx is missing)",
            );
          } else assert.equal(buildkit.code, 0, `BuildKit build of tester: ${buildkit.stderr.slice(-2000)}`);
          await run(["docker", "rmi", "pwlive-listener", "pwlive-watcher", "pwlive-tester"]);
        },
      );

      await t.step("seed: node tester, open 7001 with node -e, close with the lsof kill", async () => {
        await nodeServer(7001, "http");
        await seedClose(listener, "nodejs-tester", 7001);
        const events = await openedOnce(listener, 7001, "nodejs-tester", { closed: true });
        assert.ok(events[0].pids.length > 0, "the open names the node process");
        assert.deepEqual(events[1].last_pids, events[0].pids, "the close names the pids that held it");
      });

      await t.step(
        "seed: python tester, SimpleHTTPRequestHandler on 7002, closed with the lsof kill",
        async () => {
          const script = "import http.server, socketserver\nPORT=7002\n" +
            "httpd=socketserver.TCPServer(('', PORT), http.server.SimpleHTTPRequestHandler)\nhttpd.serve_forever()\n";
          await ok(["docker", "exec", "-d", "python-tester", "bash", "-lc", `python - <<'PY'\n${script}PY`]);
          await seedClose(listener, "python-tester", 7002);
          await openedOnce(listener, 7002, "python-tester", { closed: true });
        },
      );

      const just = (await run(["just", "--version"]).catch(() => ({ code: 1 }))).code === 0;
      await t.step({
        name:
          "just in Docker mode: test-http, test-udp, test-3000 + curl, kill-port, transient, burst, verify-suite",
        ignore: skipIf(just ? undefined : "just is not installed (npm i -g rust-just)", "just recipes"),
        fn: async () => {
          const recipe = (...args: string[]) => ok(["just", ...args], env);
          await recipe("test-http");
          await recipe("test-udp", "5361");
          const verified = await recipe("test-3000");
          assert.match(verified, /port 3000 is open/);
          const hello = await fetch(`http://localhost:${testerPort}`).then((r) => r.text());
          assert.equal(hello, "Hello 3000", "curl -s http://localhost:3000 (here the test's published port)");
          await openedOnce(listener, 5000, "nodejs-tester", { closed: false });
          await openedOnce(listener, 5361, "python-tester", { closed: false });
          await recipe("kill-port", "5000");
          await recipe("kill-port", "5361");
          await recipe("kill-port", "3000");
          await openedOnce(listener, 5000, "nodejs-tester", { closed: true });
          await openedOnce(listener, 5361, "python-tester", { closed: true });
          await openedOnce(listener, 3000, "nodejs-tester", { closed: true });
          await recipe("transient", "tcp", "4000");
          await openedOnce(listener, 4000, "nodejs-tester", { closed: true });
          await recipe("burst", "tcp", "6");
          for (let p = 6000; p < 6006; p++) await openedOnce(listener, p, "python-tester", { closed: true });
          const suite = await recipe("verify-suite");
          assert.match(suite, /9 passed, 0 failed/);
        },
      });

      await t.step(
        "runtime-owned sockets: Docker's embedded DNS (127.0.0.11) is no container's port",
        async () => {
          const res = await fetch(`${listener}/ports`).then((r) => r.json());
          const dns = (res.ports as Stored[]).filter((p) => p.addrs.includes("127.0.0.11"));
          assert.deepEqual(dns, [], "no port on 127.0.0.11");
          assert.ok(
            (res.ports as Stored[]).some((p) => p.container_name === "listner-api"),
            "the listener's 8080 is",
          );
        },
      );

      await t.step("seed: tail the log, clear it, and the next event is its first line", async () => {
        const tail = await inListener("tail -n 100 /logs/portwatcher.log");
        assert.match(tail.split("\n")[0], /^\{"ts":"[^"]+Z",/);
        await inListener("> /logs/portwatcher.log");
        await nodeServer(7003, "http");
        await waitEvents(listener, 7003, "7003 open", (es) => count(es, "open") === 1);
        await waitUntil(
          "7003 in the cleared log",
          async () => {
            const text = await Deno.readTextFile(join(logs, "portwatcher.log"));
            return text.includes('"port":7003');
          },
          10_000,
          100,
        );
        const first = (await Deno.readTextFile(join(logs, "portwatcher.log"))).split("\n")[0];
        assert.match(first, /^\{"ts":"[^"]+Z",/, "the cleared log starts with a whole line");
        assert.ok(JSON.parse(first).id, "a stored event");
        await killHolder("nodejs-tester", 7003);
      });

      await t.step(
        "a watcher killed and restarted by its restart policy: nothing lost or doubled",
        async () => {
          await nodeServer(7101, "net");
          await openedOnce(listener, 7101, "nodejs-tester", { closed: false });
          const before = await inspect("portwatcher");
          const deno = childrenOf(before.pid);
          assert.ok(deno.length > 0, "the watcher runs under tini");
          for (const pid of deno) Deno.kill(pid, "SIGKILL");
          // while it is down (or restarting): 7101 closes, 7102 opens
          await killHolder("nodejs-tester", 7101);
          await nodeServer(7102, "net");
          await waitUntil(
            "portwatcher restarted",
            async () => {
              const now = await inspect("portwatcher");
              return now.restarts > before.restarts && now.running;
            },
            30_000,
            200,
          );
          await openedOnce(listener, 7101, "nodejs-tester", { closed: true });
          await openedOnce(listener, 7102, "nodejs-tester", { closed: false });
        },
      );

      await t.step(
        "seed: docker stop portwatcher sends the shutdown closes, on its own within 2 s",
        async () => {
          await ok([
            "docker",
            "exec",
            "-d",
            "portwatcher",
            "bash",
            "-lc",
            `node -e "require('http').createServer(()=>{}).listen(5000)"`,
          ]);
          await openedOnce(listener, 5000, "portwatcher", { closed: false });
          await ok(["docker", "stop", "-t", "2", "portwatcher"]);
          const c = await inspect("portwatcher");
          assert.notEqual(c.exitCode, 137, "stopped by SIGTERM, not killed after the 2 s");
          const tail = await inListener(
            `tail -n 100 /logs/portwatcher.log | grep '"event":"close"' | tail -n 1`,
          );
          assert.match(tail, /"source":"shutdown"/);
          const closes = (await waitEvents(listener, 7102, "7102 shutdown close", (es) =>
            count(es, "close") === 1))
            .filter((e) => e.event === "close");
          assert.equal(closes[0].source, "shutdown");
          await ok(["docker", "start", "portwatcher"]);
        },
      );

      await t.step(
        "--profile ebpf: the eBPF watcher with explicit capabilities reports from the kernel through libbpf",
        async () => {
          const start = Date.now();
          await compose("--profile", "ebpf", "up", "-d", "--build", "ebpf-portwatcher");
          timings.push(`ebpf profile up --build ${Date.now() - start} ms`);
          // ready when it reports a port that is open already (its first reconciliation)
          await waitEvents(
            listener,
            8080,
            "ebpf watcher started",
            (es) => es.some((e) => e.source === "ebpf"),
            { container: "listner-api", ms: 60_000 },
          ).catch(async (e) => {
            const logs = await run(["docker", "logs", "--tail", "30", "ebpf-portwatcher"]);
            throw new Error(`${(e as Error).message}\nebpf-portwatcher:\n${logs.stdout}${logs.stderr}`);
          });
          // auto starts the native engine: libbpf1 and the compiled programs are in the image, bpftrace is not
          let started: string | undefined;
          await waitUntil(
            "ebpf-portwatcher's start line",
            async () => {
              // the whole log (the host's other sockets may have pushed the line far back), through grep
              const logs = await run([
                "sh",
                "-c",
                "docker logs ebpf-portwatcher 2>&1 | grep -m1 'ebpf: watching '",
              ]);
              started = logs.stdout.trim() || undefined;
              return started !== undefined;
            },
            10_000,
            200,
          );
          assert.match(started!, / with libbpf events /, `the engine auto chose: ${started}`);
          // libbpf1 instead of bpftrace and LLVM: the ebpf image is the watcher's, give or take a few MB
          const size = async (container: string) => {
            const image = (await ok(["docker", "inspect", "-f", "{{.Image}}", container])).trim();
            return Number((await ok(["docker", "image", "inspect", "-f", "{{.Size}}", image])).trim());
          };
          const [ebpfSize, watcherSize] = [await size("ebpf-portwatcher"), await size("portwatcher")];
          assert.ok(
            ebpfSize - watcherSize < 16e6,
            `ebpf image ${(ebpfSize / 1e6).toFixed(0)} MB, watcher's ${(watcherSize / 1e6).toFixed(0)} MB`,
          );
          await nodeServer(7301, "net");
          await openedOnce(listener, 7301, "nodejs-tester", { closed: false, source: "ebpf" });
          await openedOnce(listener, 7301, "nodejs-tester", { closed: false }); // the polling watcher too
          await killHolder("nodejs-tester", 7301);
          const events = await openedOnce(listener, 7301, "nodejs-tester", { closed: true, source: "ebpf" });
          const polling = await openedOnce(listener, 7301, "nodejs-tester", { closed: true });
          // both watchers name the machine from its /etc/hostname (mounted), not from their own container
          const machine = Deno.readTextFileSync("/etc/hostname").split("\n")[0].trim();
          for (const e of [...events, ...polling]) assert.equal(e.host, machine, `${e.source} event's host`);
        },
      );

      await t.step(
        "--profile pg: two listener replicas over one PostgreSQL see the same events",
        async () => {
          const start = Date.now();
          await ok(
            [...cli, "-f", join(ROOT, "compose.yaml"), "--profile", "pg", "up", "-d", "--build"],
            pgEnv,
          );
          timings.push(`pg profile up ${Date.now() - start} ms`);
          for (const name of ["listner-api", "listner-api-2"]) {
            await waitUntil(
              `${name} healthy`,
              async () => {
                const out = await run(["docker", "inspect", "-f", "{{.State.Health.Status}}", name]);
                return out.stdout.trim() === "healthy";
              },
              90_000,
              500,
            );
          }
          await ok(["docker", "exec", "-d", "python-tester", "python", "-m", "http.server", "7201"]);
          await openedOnce(listener, 7201, "python-tester", { closed: false });
          const fromSecond = await ok([
            "docker",
            "exec",
            "listner-api-2",
            "deno",
            "eval",
            "const r = await fetch('http://127.0.0.1:8080/events?port=7201'); console.log(await r.text())",
          ]);
          const seen = JSON.parse(fromSecond).events as Stored[];
          assert.equal(count(seen, "open", "polling"), 1, "the second replica reads the same store");
        },
      );

      await t.step("every container stops on SIGTERM within 2 s (compose stop -t 2)", async () => {
        const names = await existing([...NAMES, ...PROFILE_NAMES]);
        const start = Date.now();
        // compose stops the watchers before the listeners they deliver to (depends_on)
        await ok([...cli, "-f", join(ROOT, "compose.yaml"), ...profiles, "stop", "-t", "2"], pgEnv);
        timings.push(`compose stop (all) ${Date.now() - start} ms`);
        for (const name of names) {
          assert.notEqual((await inspect(name)).exitCode, 137, `${name} stopped by itself, not SIGKILLed`);
        }
      });
    } finally {
      await run(
        [...cli, "-f", join(ROOT, "compose.yaml"), ...profiles, "down", "-v", "--remove-orphans"],
        env,
      );
      const left = await existing([...NAMES, ...PROFILE_NAMES]);
      await Deno.remove(logs, { recursive: true }).catch(() => {});
      await eng.stop();
      console.log(`live stack timings: ${timings.join(", ")}`);
      assert.deepEqual(left, [], "no container is left");
      if (eng.started) {
        assert.equal(await networkState(), network, "iptables, ip_forward and bridges as found");
      }
    }
  },
});
