/**
 * `deno run -A stack/main.ts <command>`: the stack behind the Justfile. With a Docker engine and a compose CLI
 * (or PORTWATCH_RUNTIME=docker) commands go to compose.yaml through `docker compose` or `docker-compose`;
 * without them (or PORTWATCH_RUNTIME=netns) the stack runs as processes in network namespaces (stack.ts).
 * Commands given to exec and spawn name `deno` and the repository's relative paths (testers/http.ts): inside a
 * container that is the image's deno and /app; in the namespace stack, this deno and this checkout.
 * @module
 */
import { isAbsolute, join } from "node:path";
import { CONTAINERS, inside, stop, up, type UpOptions } from "./stack.ts";
import { readState, stackDir } from "./state.ts";
import { waitUntil, works } from "./sys.ts";
import { expectEvents, openedAndClosed } from "./verify.ts";
import {
  chooseRuntime,
  dockerDataRoot,
  execArgs,
  findCompose,
  HF_SETTINGS,
  PROFILES,
  upArgs,
} from "./compose.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const USAGE = `usage: stack/main.ts <command>
  up [hf|sv|ebpf]        start the listener and the containers (watchers)
  stop                   stop everything (shutdown events first); clean also removes state and logs
  status                 what is running
  exec NAME -- CMD...    run CMD inside container NAME (foreground)
  spawn NAME -- CMD...   run CMD inside container NAME in the background (stopped by stop)
  shell NAME             a shell inside container NAME
  logs [N]               the last N stored events (default 20), then follow the live stream
  logs-since TIME        events since TIME (ISO or 15m, 2h)
  ebpf-logs              the eBPF watcher's own log, followed
  verify-suite           steady, transient and burst cases, PASS/FAIL from the listener's API
  verify-port PORT [--wait S] [--container NAME]
                         what the listener knows about PORT (waiting up to S s for it to be open in NAME)
containers: ${CONTAINERS.join(", ")}`;

/** The compose CLI, once the runtime is chosen as docker. */
let composeCli: string[] = ["docker", "compose"];

async function runtime(): Promise<"docker" | "netns"> {
  const forced = Deno.env.get("PORTWATCH_RUNTIME");
  const engine = forced !== "netns" && await works(["docker", "info"]);
  const cli = engine ? await findCompose() : undefined;
  const choice = chooseRuntime(forced, engine, cli);
  if (choice.notice) console.error(`portwatch stack: ${choice.notice}`);
  if (cli) composeCli = cli;
  if (choice.runtime === "docker" && !Deno.env.get("DOCKER_DATA_ROOT")) {
    // compose.yaml mounts <data root>/containers for attribution; an engine started with --data-root elsewhere
    const root = await dockerDataRoot();
    if (root) Deno.env.set("DOCKER_DATA_ROOT", root);
  }
  return choice.runtime;
}

/** A command for the namespace stack: `deno` is this deno, relative paths are this checkout's. */
function onHost(cmd: string[]): string[] {
  return cmd.map((arg, i) =>
    i === 0 && arg === "deno"
      ? Deno.execPath()
      : /^[\w.-]+\/[\w./-]+\.ts$/.test(arg) && !isAbsolute(arg)
      ? join(ROOT, arg)
      : arg
  );
}

function listenerUrl(): string {
  const state = readState(stackDir());
  return Deno.env.get("LISTENER") ?? state?.listener.url ??
    `http://127.0.0.1:${Deno.env.get("STACK_PORT") ?? 8080}`;
}

async function compose(args: string[]): Promise<number> {
  const child = new Deno.Command(composeCli[0], {
    args: [...composeCli.slice(1), "-f", join(ROOT, "compose.yaml"), ...args],
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  return (await child.status).code;
}

const WATCHER_VARS = [
  "SCAN_INTERVAL",
  "BURST_SCANS",
  "BURST_DELAY",
  "USE_PROC",
  "WATCH_PORTS",
  "DESIRED_PORTS",
  "CLOSE_GRACE_MS",
  "VERBOSE_LSOF",
  "EBPF_ONLY",
  "EBPF_FALLBACK",
  "TRACE_EBPF_EVENTS",
  "TRACEE_ARGS",
  "LOG_LEVEL",
];

async function main(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  const dir = stackDir();
  const rt = cmd && !["verify-port", "logs", "logs-since", "status"].includes(cmd)
    ? await runtime()
    : "netns";
  switch (cmd) {
    case "up": {
      const mode = rest[0] ?? "default";
      if (!["default", "hf", "sv", "ebpf"].includes(mode)) {
        throw new Error(`up ${mode}: expected hf, sv or ebpf`);
      }
      if (rt === "docker") {
        if (mode === "hf" || mode === "sv") {
          for (const [k, v] of Object.entries(HF_SETTINGS)) if (!Deno.env.get(k)) Deno.env.set(k, v);
        }
        if (mode === "sv") {
          console.log("docker: the containers' restart policy (unless-stopped) supervises the watchers");
        }
        return compose(upArgs(mode));
      }
      const watcherEnv: Record<string, string> = {};
      for (const v of WATCHER_VARS) {
        const value = Deno.env.get(v);
        if (value !== undefined) watcherEnv[v] = value;
      }
      const o: UpOptions = {
        dir,
        prefix: Deno.env.get("STACK_PREFIX") ?? "pw",
        port: Number(Deno.env.get("STACK_PORT") ?? 8080),
        mode: mode === "sv" ? "hf" : mode as UpOptions["mode"],
        supervise: mode === "sv",
        watcherEnv,
        logPath: Deno.env.get("LOG_PATH") ?? join(ROOT, "logs", "portwatcher.log"),
      };
      const state = await up(o);
      console.log(
        `stack up (${state.mode}, no Docker: network namespaces): listener ${state.listener.url}, log ${o.logPath}\n` +
          Object.values(state.containers).map((c) =>
            `  ${c.name}: netns ${c.ns}, ${c.nsIp}, container id ${c.containerId.slice(0, 12)}`
          ).join("\n"),
      );
      return 0;
    }
    case "stop":
    case "clean": {
      if (rt === "docker") {
        const profiles = PROFILES.flatMap((p) => ["--profile", p]);
        return compose([...profiles, ...(cmd === "clean" ? ["down", "-v", "--remove-orphans"] : ["stop"])]);
      }
      const stopped = await stop(dir);
      console.log(stopped ? "stack stopped; no process, namespace or cgroup left" : "no stack was up");
      if (cmd === "clean") {
        await Deno.remove(dir, { recursive: true }).catch(() => {});
        console.log(`removed ${dir}`);
      }
      return 0;
    }
    case "status": {
      const state = readState(dir);
      if (!state) {
        console.log("no stack is up");
        return 1;
      }
      console.log(JSON.stringify(state, null, 2));
      return 0;
    }
    case "exec":
    case "spawn":
    case "shell": {
      const name = rest[0];
      const sep = rest.indexOf("--");
      const command = cmd === "shell" ? ["bash"] : rest.slice(sep + 1);
      if (!name || (cmd !== "shell" && (sep === -1 || command.length === 0))) throw new Error(USAGE);
      if (rt === "docker") {
        const detached = cmd === "spawn";
        const code = await compose(
          execArgs(name, command, { detached, tty: !detached && Deno.stdin.isTerminal() }),
        );
        if (detached && code === 0) console.log(`started in ${name}: ${command.join(" ")}`);
        return code;
      }
      const code = await inside(dir, name, onHost(command), cmd === "spawn");
      if (cmd === "spawn") console.log(`started in ${name}: pid ${code}`);
      return cmd === "spawn" ? 0 : code;
    }
    case "ebpf-logs": {
      if (rt === "docker") {
        return compose(["--profile", "ebpf", "logs", "-f", "--tail", "50", "ebpf-portwatcher"]);
      }
      const tail = new Deno.Command("tail", {
        args: ["-n", "50", "-f", join(dir, "logs", "portwatcher.log")],
        stdout: "inherit",
        stderr: "inherit",
      });
      return (await tail.spawn().status).code;
    }
    case "logs": {
      const n = Number(rest[0] ?? 20);
      const res = await fetch(`${listenerUrl()}/events?limit=${n}`);
      const { events } = await res.json();
      for (const e of events.reverse()) console.log(JSON.stringify(e));
      if (rest.includes("--no-follow")) return 0;
      const stream = await fetch(`${listenerUrl()}/events/stream?last_event_id=${events.at(-1)?.id ?? ""}`);
      for await (const chunk of stream.body!.pipeThrough(new TextDecoderStream())) {
        for (const line of chunk.split("\n")) if (line.startsWith("data: ")) console.log(line.slice(6));
      }
      return 0;
    }
    case "logs-since": {
      const res = await fetch(
        `${listenerUrl()}/events?order=asc&limit=10000&since=${encodeURIComponent(rest[0] ?? "15m")}`,
      );
      const body = await res.json();
      if (!res.ok) throw new Error(body.error);
      for (const e of body.events) console.log(JSON.stringify(e));
      return 0;
    }
    case "verify-port": {
      const port = rest[0];
      if (!/^\d+$/.test(port ?? "")) throw new Error(`verify-port ${port ?? ""}: expected a port number`);
      const waitIx = rest.indexOf("--wait");
      const waitS = waitIx === -1 ? 0 : Number(rest[waitIx + 1]);
      if (!(waitS >= 0)) throw new Error(`verify-port --wait ${rest[waitIx + 1]}: expected seconds (>= 0)`);
      const inIx = rest.indexOf("--container");
      const container = inIx === -1 ? undefined : rest[inIx + 1];
      if (inIx !== -1 && !container) throw new Error("verify-port --container: expected a container name");
      if (waitS > 0) {
        const q = new URLSearchParams({ port, ...(container ? { container } : {}) });
        await waitUntil(
          `port ${port} open`,
          async () => (await fetch(`${listenerUrl()}/ports?${q}`).then((r) => r.json())).count > 0,
          waitS * 1000,
          200,
        ).catch(() => {});
      }
      const [open, events] = await Promise.all([
        fetch(`${listenerUrl()}/ports?port=${port}`).then((r) => r.json()),
        fetch(`${listenerUrl()}/events?port=${port}&limit=20`).then((r) => r.json()),
      ]);
      if (open.error || events.error) throw new Error(open.error ?? events.error);
      console.log(open.count ? `port ${port} is open:` : `port ${port} is not open anywhere`);
      for (const p of open.ports) {
        console.log(`  ${p.container_name ?? p.host} ${p.proto} pids ${p.pids.join(",")}`);
      }
      console.log(`last events for ${port}:`);
      for (const e of events.events) {
        console.log(`  ${e.ts} ${e.event} ${e.container_name ?? e.host} ${e.source}`);
      }
      return open.count ? 0 : 1;
    }
    case "verify-suite": {
      if (rt === "docker") {
        return await verifySuite(listenerUrl(), async (name, command, detached) => {
          const code = await compose(execArgs(name, command, { detached, tty: false }));
          if (code !== 0) throw new Error(`compose exec ${name} ${command.join(" ")} failed (${code})`);
        });
      }
      const state = readState(dir);
      if (!state) throw new Error("no stack is up: run `just up` (or `just up-hf`) first");
      return await verifySuite(state.listener.url, async (name, command, detached) => {
        await inside(dir, name, onHost(command), detached);
      });
    }
    default:
      console.error(USAGE);
      return cmd ? 2 : 0;
  }
}

/** Runs a command in a stack container, detached or to its end. */
type Run = (name: string, command: string[], detached: boolean) => Promise<void>;

async function verifySuite(base: string, run: Run): Promise<number> {
  const since = new Date(Date.now() - 1000).toISOString();
  const denoRun = ["deno", "run", "--allow-all"];
  const results = [];
  // steady: a TCP listener held in nodejs-tester, a UDP socket in python-tester
  await run("nodejs-tester", [...denoRun, "testers/hold.ts", "tcp", "3901"], true);
  await run("python-tester", [...denoRun, "testers/hold.ts", "udp", "3902"], true);
  const steady = (port: number, proto: string, container: string) =>
    expectEvents(base, `steady ${proto} ${port}`, port, since, container, openedAndClosed(container, false));
  results.push(await steady(3901, "tcp", "nodejs-tester"));
  results.push(await steady(3902, "udp", "python-tester"));
  // transient: held 1.5 s (the seed's settings catch it; eBPF catches any)
  await run("nodejs-tester", [...denoRun, "testers/transient.ts", "tcp", "3903", "--ms", "1500"], false);
  results.push(
    await expectEvents(
      base,
      "transient tcp 3903",
      3903,
      since,
      "nodejs-tester",
      openedAndClosed("nodejs-tester", true),
    ),
  );
  // burst: 6 ports, each held 1.5 s
  await run("python-tester", [
    ...denoRun,
    "testers/burst.ts",
    "tcp",
    "6",
    "--base",
    "3910",
    "--hold-ms",
    "1500",
    "--interval",
    "0.1",
  ], false);
  for (let p = 3910; p < 3916; p++) {
    results.push(
      await expectEvents(
        base,
        `burst tcp ${p}`,
        p,
        since,
        "python-tester",
        openedAndClosed("python-tester", true),
      ),
    );
  }
  // the steady holders go, so that the suite can run again on the same stack
  await run("nodejs-tester", [...denoRun, "testers/kill_port.ts", "3901", "--proto", "tcp"], false);
  await run("python-tester", [...denoRun, "testers/kill_port.ts", "3902", "--proto", "udp"], false);
  for (const r of results) console.log(`${r.pass ? "PASS" : "FAIL"}  ${r.name}: ${r.detail}`);
  const failed = results.filter((r) => !r.pass).length;
  console.log(`${results.length - failed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    console.error(`portwatch stack: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
