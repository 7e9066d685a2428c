/**
 * `deno run -A stack/main.ts <command>`: the stack behind the Justfile. With a Docker engine (or
 * PORTWATCH_RUNTIME=docker) commands go to `docker compose`; without one (or PORTWATCH_RUNTIME=netns) the stack
 * runs as processes in network namespaces (stack.ts).
 * @module
 */
import { join } from "node:path";
import { CONTAINERS, inside, stop, up, type UpOptions } from "./stack.ts";
import { readState, stackDir } from "./state.ts";
import { works } from "./sys.ts";
import { expectEvents, openedAndClosed } from "./verify.ts";

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
  verify-suite           steady, transient and burst cases, PASS/FAIL from the listener's API
  verify-port PORT       what the listener knows about PORT
containers: ${CONTAINERS.join(", ")}`;

async function runtime(): Promise<"docker" | "netns"> {
  const forced = Deno.env.get("PORTWATCH_RUNTIME");
  if (forced === "docker" || forced === "netns") return forced;
  if (forced) throw new Error(`PORTWATCH_RUNTIME=${forced}: expected docker or netns`);
  return (await works(["docker", "info"])) ? "docker" : "netns";
}

function listenerUrl(): string {
  const state = readState(stackDir());
  return Deno.env.get("LISTENER") ?? state?.listener.url ??
    `http://127.0.0.1:${Deno.env.get("STACK_PORT") ?? 8080}`;
}

async function compose(args: string[]): Promise<number> {
  const child = new Deno.Command("docker", {
    args: ["compose", "-f", join(ROOT, "compose.yaml"), ...args],
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
  const rt = cmd && !["verify-port", "logs", "logs-since", "verify-suite", "status"].includes(cmd)
    ? await runtime()
    : "netns";
  switch (cmd) {
    case "up": {
      const mode = rest[0] ?? "default";
      if (!["default", "hf", "sv", "ebpf"].includes(mode)) {
        throw new Error(`up ${mode}: expected hf, sv or ebpf`);
      }
      if (rt === "docker") {
        const env = mode === "hf" ? ["SCAN_INTERVAL=1", "BURST_SCANS=5", "BURST_DELAY=0.02"] : [];
        for (const e of env) Deno.env.set(e.split("=")[0], e.split("=")[1]);
        return compose(["up", "-d", "--build", ...(mode === "ebpf" ? ["--profile", "ebpf"] : [])]);
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
      if (rt === "docker") return compose(cmd === "clean" ? ["down", "-v", "--remove-orphans"] : ["stop"]);
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
      if (rt === "docker") return compose(["exec", name, ...command]);
      const code = await inside(dir, name, command, cmd === "spawn");
      if (cmd === "spawn") console.log(`started in ${name}: pid ${code}`);
      return cmd === "spawn" ? 0 : code;
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
    case "verify-suite":
      return await verifySuite(dir);
    default:
      console.error(USAGE);
      return cmd ? 2 : 0;
  }
}

async function verifySuite(dir: string): Promise<number> {
  const state = readState(dir);
  if (!state) throw new Error("no stack is up: run `just up` (or `just up-hf`) first");
  const base = state.listener.url;
  const since = new Date(Date.now() - 1000).toISOString();
  const testers = join(ROOT, "testers");
  const denoRun = [Deno.execPath(), "run", "--allow-all"];
  const results = [];
  // steady: a TCP listener held in nodejs-tester, a UDP socket in python-tester
  await inside(dir, "nodejs-tester", [...denoRun, join(testers, "hold.ts"), "tcp", "3901"], true);
  await inside(dir, "python-tester", [...denoRun, join(testers, "hold.ts"), "udp", "3902"], true);
  results.push(
    await expectEvents(
      base,
      "steady tcp 3901",
      3901,
      since,
      "nodejs-tester",
      openedAndClosed("nodejs-tester", false),
    ),
  );
  results.push(
    await expectEvents(
      base,
      "steady udp 3902",
      3902,
      since,
      "python-tester",
      openedAndClosed("python-tester", false),
    ),
  );
  // transient: held 1.5 s (the seed's settings catch it; eBPF catches any)
  await inside(dir, "nodejs-tester", [
    ...denoRun,
    join(testers, "transient.ts"),
    "tcp",
    "3903",
    "--ms",
    "1500",
  ], false);
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
  await inside(dir, "python-tester", [
    ...denoRun,
    join(testers, "burst.ts"),
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
