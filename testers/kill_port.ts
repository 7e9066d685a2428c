/**
 * Kill whatever holds a port, in this network namespace:
 *
 *     deno run -A testers/kill_port.ts PORT [--proto tcp|udp] [--signal TERM|KILL] [--wait SECONDS]
 *
 * Lists the listening TCP and bound UDP sockets on PORT with {@link NetlinkSource} (sock_diag; falls back to
 * {@link ProcNetSource} when netlink is unusable), finds their processes with {@link PidResolver}, signals each
 * one, prints a JSON line per process signalled, then waits (default 3 s) until the port is free and prints a
 * summary line. Exits 1 when nothing holds the port, when the holders are not visible (another pid namespace,
 * or not root), when a kill is refused, or when the port is still held after the wait.
 *
 * The module also exports {@link findHolders} and {@link describeHolders}, which the other testers use to name
 * the holder of a port that is already in use.
 * @module
 */
import { NetlinkSource, NetlinkUnavailableError } from "../sources/netlink.ts";
import { PidResolver, type ProcInfo } from "../pipeline/pid_resolver.ts";
import { ProcNetSource } from "../sources/proc_net.ts";
import type { ListeningSocket, SocketSource } from "../sources/socket.ts";
import {
  emit,
  parseCli,
  parsePort,
  parseProto,
  parseSecondsMs,
  parseSignal,
  type Proto,
  runMain,
  stringOpt,
  TesterError,
} from "./args.ts";

/** One socket on the port, with the processes holding it (empty when none is visible from here). */
export interface PortHolder {
  socket: ListeningSocket;
  pids: number[];
  /** comm/cmdline/uid of each pid that could be read. */
  procs: ProcInfo[];
}

/** What {@link findHolders} found, and with which source. */
export interface HolderScan {
  source: "netlink" | "proc";
  holders: PortHolder[];
}

function openSource(): SocketSource {
  try {
    return new NetlinkSource();
  } catch (e) {
    if (!(e instanceof NetlinkUnavailableError)) throw e;
    return new ProcNetSource();
  }
}

/** The listening TCP / bound UDP sockets on `port` (of `protos`) in this network namespace, with their pids. */
export function findHolders(port: number, protos: readonly Proto[] = ["tcp", "udp"]): HolderScan {
  const source = openSource();
  let sockets: ListeningSocket[];
  try {
    sockets = (source.scan() as ListeningSocket[]).filter((s) => s.port === port && protos.includes(s.proto));
  } finally {
    source.close();
  }
  const resolver = new PidResolver();
  const pids = resolver.resolve(sockets.map((s) => s.inode));
  const holders = sockets.map((socket) => {
    const ps = pids.get(socket.inode) ?? [];
    return {
      socket,
      pids: ps,
      procs: ps.map((p) => resolver.processInfo(p)).filter((i): i is ProcInfo => i !== undefined),
    };
  });
  return { source: source.name as "netlink" | "proc", holders };
}

/** "tcp 0.0.0.0:5000", "udp [::1]:5000". */
export function socketText(s: ListeningSocket): string {
  return `${s.proto} ${s.family === 6 ? `[${s.addr}]` : s.addr}:${s.port}`;
}

/**
 * Who holds the port, for an "already in use" message: "held by pid 123 comm deno", several joined by ", ",
 * each followed by " on ADDR" when it is bound to another address than `host`.
 */
export function describeHolders(holders: readonly PortHolder[], host?: string): string {
  if (holders.length === 0) {
    return "its holder was not found: another network namespace's socket, or one already closing";
  }
  const parts = new Set<string>();
  for (const h of holders) {
    const where = host !== undefined && h.socket.addr !== host ? ` on ${h.socket.addr}` : "";
    if (h.pids.length === 0) {
      parts.add(
        `an unknown process${where} (socket inode ${h.socket.inode}; ` +
          `its pid is not visible here: another pid namespace, or not root)`,
      );
      continue;
    }
    for (const pid of h.pids) {
      const comm = h.procs.find((p) => p.pid === pid)?.comm;
      parts.add(`pid ${pid}${comm !== undefined ? ` comm ${comm}` : ""}${where}`);
    }
  }
  return `held by ${[...parts].join(", ")}`;
}

/** Usage of kill_port.ts. */
export const USAGE = `kill_port.ts PORT [--proto tcp|udp] [--signal TERM|KILL] [--wait SECONDS]
  Kill the processes holding PORT (a listening TCP or bound UDP socket) in this network namespace.
  --proto tcp|udp     only sockets of this protocol (default both)
  --signal TERM|KILL  the signal sent (default TERM)
  --wait SECONDS      wait this long for the port to be free; 0: do not wait (default 3)
  Prints one JSON line per process signalled and a summary line; exit 1 when nothing holds PORT, when the
  holders cannot be seen or killed, or when PORT is still held after the wait; exit 2 for a bad argument.`;

async function main(args: string[]): Promise<number | "help"> {
  const cli = parseCli(args, {
    options: { proto: { type: "string" }, signal: { type: "string" }, wait: { type: "string" } },
    positionals: ["PORT"],
  });
  if (cli === "help") return "help";
  const port = parsePort("PORT", cli.positionals[0]);
  const protoOpt = stringOpt(cli, "proto");
  const protos: Proto[] = protoOpt !== undefined ? [parseProto("--proto", protoOpt)] : ["tcp", "udp"];
  const sigOpt = stringOpt(cli, "signal");
  const signal = sigOpt !== undefined ? parseSignal("--signal", sigOpt) : "SIGTERM";
  const waitOpt = stringOpt(cli, "wait");
  const waitMs = waitOpt !== undefined ? parseSecondsMs("--wait", waitOpt) : 3000;
  const what = `port ${port}/${protos.join("+")}`;

  const { holders, source } = findHolders(port, protos);
  if (holders.length === 0) {
    throw new TesterError(
      `nothing holds ${what} here (no listening TCP or bound UDP socket on it in this network namespace)`,
    );
  }
  const byPid = new Map<number, { info?: ProcInfo; sockets: ListeningSocket[] }>();
  for (const h of holders) {
    for (const pid of h.pids) {
      if (pid === Deno.pid) continue;
      const e = byPid.get(pid) ?? { info: h.procs.find((p) => p.pid === pid), sockets: [] };
      e.sockets.push(h.socket);
      byPid.set(pid, e);
    }
  }
  if (byPid.size === 0) {
    throw new TesterError(
      `${what} is held (${
        holders.map((h) => `${socketText(h.socket)} inode ${h.socket.inode}`).join(", ")
      }) ` +
        `but no process holding it is visible here: another pid namespace, or not root (uid ${Deno.uid()})`,
    );
  }
  const killed: number[] = [];
  const refused: string[] = [];
  for (const [pid, { info, sockets }] of byPid) {
    try {
      Deno.kill(pid, signal);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue; // exited meanwhile (ESRCH)
      const why = e instanceof Deno.errors.PermissionDenied
        ? `permission denied (uid ${Deno.uid()}; it runs as uid ${info?.uid ?? "?"})`
        : (e as Error).message;
      refused.push(`pid ${pid}${info ? ` comm ${info.comm}` : ""}: ${why}`);
      continue;
    }
    killed.push(pid);
    emit({
      killed: pid,
      comm: info?.comm ?? null,
      cmdline: info?.cmdline ?? null,
      uid: info?.uid ?? null,
      signal,
      sockets: sockets.map(socketText),
    });
  }
  if (refused.length > 0) throw new TesterError(`cannot kill the holder of ${what}: ${refused.join("; ")}`);

  const inodes = new Set(holders.map((h) => h.socket.inode));
  let freed: boolean | null = null;
  if (waitMs > 0) {
    const end = Date.now() + waitMs;
    for (;;) {
      const still = findHolders(port, protos).holders.filter((h) => inodes.has(h.socket.inode));
      if (still.length === 0) {
        freed = true;
        break;
      }
      if (Date.now() >= end) {
        freed = false;
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  emit({ port, proto: protos, signal, killed, freed, source });
  if (freed === false) {
    throw new TesterError(
      `sent ${signal} to pid ${killed.join(", ")} but ${what} is still held after ${waitMs / 1000} s` +
        (signal === "SIGTERM" ? " (try --signal KILL)" : ""),
    );
  }
  return 0;
}

if (import.meta.main) await runMain("kill_port", USAGE, () => main(Deno.args));
