/**
 * The whole stack on one machine with no Docker: the listener on the host, and named "containers" (network
 * namespace + cgroup + veth, see containers.ts) each running a watcher that delivers to `listner-api`. Processes
 * run detached (or under supervisord with `sv`); `stop` leaves no process, namespace or cgroup behind.
 * @module
 */
import { join } from "node:path";
import { cgroupRootOrThrow, createContainer, inContainer, removeContainer } from "./containers.ts";
import { readState, type StackState, writeState } from "./state.ts";
import { alive, sh, signal, spawnDetached, waitUntil } from "./sys.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
/** The containers of the seed's stack. */
export const CONTAINERS = ["portwatcher", "nodejs-tester", "python-tester"] as const;

/** How to bring the stack up. */
export interface UpOptions {
  dir: string;
  /** Prefix of namespace and cgroup names (tests use their own). */
  prefix: string;
  port: number;
  /** "default", "hf" (the seed's high-fidelity scan settings) or "ebpf". */
  mode: "default" | "hf" | "ebpf";
  /** Run under supervisord (restarts what dies). */
  supervise: boolean;
  /** Extra environment for the watchers (the caller's SCAN_INTERVAL etc.). */
  watcherEnv: Record<string, string>;
  /** Where the listener writes its log. */
  logPath: string;
}

const MODE_ENV: Record<UpOptions["mode"], Record<string, string>> = {
  default: { SCAN_INTERVAL: "1" },
  hf: { SCAN_INTERVAL: "1", BURST_SCANS: "5", BURST_DELAY: "0.02" },
  ebpf: { SCAN_INTERVAL: "1" },
};

function deno(...args: string[]): string[] {
  return [Deno.execPath(), "run", "--allow-all", ...args];
}

/** Bring the stack up; resolves once the listener answers and every watcher is watching. */
export async function up(o: UpOptions): Promise<StackState> {
  if (readState(o.dir)) {
    throw new Error(`a stack is already up (${o.dir}/state.json): run \`just stop\` first`);
  }
  if (Deno.uid() !== 0) throw new Error("the no-Docker stack needs root (network namespaces, cgroups)");
  const logs = join(o.dir, "logs");
  Deno.mkdirSync(logs, { recursive: true });
  const cgroupParent = join(cgroupRootOrThrow(), `portwatch-${o.prefix}`);
  Deno.mkdirSync(cgroupParent, { recursive: true });
  const state: StackState = {
    prefix: o.prefix,
    dir: o.dir,
    listener: { pid: 0, port: o.port, url: `http://127.0.0.1:${o.port}`, logPath: o.logPath },
    containers: {},
    cgroupParent,
    mode: o.mode + (o.supervise ? "+sv" : ""),
  };
  writeState(state);
  const used = new Set<string>();
  try {
    for (const name of CONTAINERS) {
      state.containers[name] = await createContainer(o.prefix, name, cgroupParent, used);
      writeState(state);
    }
    const listenerCmd = deno(
      join(ROOT, "listener/main.ts"),
      "--host",
      "0.0.0.0",
      "--port",
      String(o.port),
      "--log-path",
      o.logPath,
    );
    const host = Deno.hostname();
    const watcherCmds = Object.values(state.containers).map((c) => {
      const program = o.mode === "ebpf" && c.name === "portwatcher" ? "ebpf/main.ts" : "watcher/main.ts";
      const env = {
        LISTENER_URL: `http://listner-api:${o.port}/ingest`,
        CONTAINER_NAME: c.name,
        HOST_NAME: host,
        SNAPSHOT_PATH: join(o.dir, c.name, "snapshot"),
        SPOOL_PATH: join(o.dir, c.name, "spool"),
        ...MODE_ENV[o.mode],
        ...o.watcherEnv,
      };
      const envArgs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
      // The polling watcher is light work: V8's lite mode and a small young generation keep it near 53 MB
      // (see the watch task in deno.json).
      const flags = program === "watcher/main.ts" ? ["--v8-flags=--lite-mode,--max-semi-space-size=1"] : [];
      return { c, cmd: inContainer(c, ["env", ...envArgs, ...deno(...flags, join(ROOT, program))]) };
    });
    if (o.supervise) {
      const conf = join(o.dir, "supervisord.conf");
      Deno.writeTextFileSync(
        conf,
        supervisorConf(o.dir, listenerCmd, watcherCmds.map((w) => ({ name: w.c.name, cmd: w.cmd }))),
      );
      await sh(["supervisord", "-c", conf]);
      state.supervisor = { conf };
      writeState(state);
    } else {
      state.listener.pid = await spawnDetached(listenerCmd, join(logs, "listener.log"), {
        LOG_LEVEL: "info",
      });
      writeState(state);
    }
    await waitUntil("the listener to answer /healthz", async () => {
      try {
        return (await fetch(`${state.listener.url}/healthz`)).ok;
      } catch {
        return false;
      }
    });
    if (!o.supervise) {
      for (const { c, cmd } of watcherCmds) {
        c.watcherPid = await spawnDetached(cmd, join(logs, `${c.name}.log`));
        writeState(state);
      }
    }
    for (const { c } of watcherCmds) {
      await waitUntil(`watcher ${c.name} to start`, () => {
        try {
          return /watching /.test(Deno.readTextFileSync(join(logs, `${c.name}.log`)));
        } catch {
          return false;
        }
      }, 60_000);
    }
    if (o.supervise) await recordSupervisedPids(state);
    return state;
  } catch (e) {
    await stop(o.dir).catch(() => {});
    throw e;
  }
}

function supervisorConf(
  dir: string,
  listener: string[],
  watchers: { name: string; cmd: string[] }[],
): string {
  const q = (cmd: string[]) =>
    cmd.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'"'"'`)}'`)).join(" ");
  const prog = (name: string, cmd: string[], priority: number) => `
[program:${name}]
command=${q(cmd).replaceAll("%", "%%")}
priority=${priority}
autorestart=true
startsecs=1
stopsignal=TERM
stopwaitsecs=20
redirect_stderr=true
stdout_logfile=${join(dir, "logs", `${name}.log`)}
stdout_logfile_maxbytes=0
`;
  return `[supervisord]
pidfile=${join(dir, "supervisord.pid")}
logfile=${join(dir, "logs", "supervisord.log")}
childlogdir=${join(dir, "logs")}

[unix_http_server]
file=${join(dir, "supervisor.sock")}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://${join(dir, "supervisor.sock")}
${prog("listener", listener, 10)}${watchers.map((w) => prog(w.name, w.cmd, 20)).join("")}`;
}

/** Ask supervisord for the pids it runs and record them. */
export async function recordSupervisedPids(state: StackState): Promise<void> {
  const out = await sh(["supervisorctl", "-c", state.supervisor!.conf, "pid", "all"], { check: false });
  const pids = out.stdout.trim().split("\n").map(Number);
  const names = ["listener", ...Object.keys(state.containers)];
  // `pid all` lists programs in name order.
  const sorted = [...names].sort();
  sorted.forEach((name, i) => {
    if (name === "listener") state.listener.pid = pids[i];
    else if (pids[i]) state.containers[name].watcherPid = pids[i];
  });
  writeState(state);
}

/** Stop everything the stack started and remove namespaces and cgroups; watchers first (shutdown events). */
export async function stop(dir: string): Promise<boolean> {
  const state = readState(dir);
  if (!state) return false;
  if (state.supervisor) {
    await sh(["supervisorctl", "-c", state.supervisor.conf, "stop", ...Object.keys(state.containers)], {
      check: false,
    })
      .catch(() => {});
    await sh(["supervisorctl", "-c", state.supervisor.conf, "shutdown"], { check: false }).catch(() => {});
    await waitUntil("supervisord to exit", () => {
      try {
        return !alive(Number(Deno.readTextFileSync(join(dir, "supervisord.pid"))));
      } catch {
        return true;
      }
    }).catch(() => {});
  }
  // Watchers first, so their shutdown closes (for everything still open) reach the listener; then testers;
  // then the listener.
  const containers = Object.values(state.containers);
  for (const c of containers) if (c.watcherPid) signal(c.watcherPid, "SIGTERM");
  await waitUntil(
    "watchers to exit",
    () => containers.every((c) => !c.watcherPid || !alive(c.watcherPid)),
    20_000,
  )
    .catch(() => {});
  for (const c of containers) for (const pid of c.pids) signal(pid, "SIGTERM");
  await waitUntil("testers to exit", () => containers.every((c) => c.pids.every((p) => !alive(p))), 5_000)
    .catch(() => {});
  // Anything still in a container's cgroup (testers started by hand, stragglers) is killed.
  for (const c of containers) {
    try {
      for (const pid of Deno.readTextFileSync(join(c.cgroup, "cgroup.procs")).split("\n").filter((x) => x)) {
        signal(Number(pid), "SIGKILL");
      }
    } catch { /* gone */ }
  }
  if (state.listener.pid) {
    signal(state.listener.pid, "SIGTERM");
    await waitUntil("the listener to exit", () => !alive(state.listener.pid), 20_000).catch(() =>
      signal(state.listener.pid, "SIGKILL")
    );
  }
  for (const c of containers) await removeContainer(c);
  try {
    Deno.removeSync(state.cgroupParent);
  } catch { /* busy or gone */ }
  Deno.removeSync(join(dir, "state.json"));
  return true;
}

/** Run `cmd` inside container `name`: in the foreground (inheriting stdio) or detached (recorded for stop). */
export async function inside(dir: string, name: string, cmd: string[], detached: boolean): Promise<number> {
  const state = readState(dir);
  if (!state) throw new Error("no stack is up: run `just up` first");
  const c = state.containers[name];
  if (!c) throw new Error(`no container "${name}"; containers: ${Object.keys(state.containers).join(", ")}`);
  const full = inContainer(c, cmd);
  if (detached) {
    const pid = await spawnDetached(full, join(dir, "logs", `${name}-${Date.now()}.log`));
    c.pids.push(pid);
    writeState(state);
    return pid;
  }
  const status = await new Deno.Command(full[0], {
    args: full.slice(1),
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  })
    .spawn().status;
  return status.code;
}
