/**
 * Open and hold a TCP listener or a bound UDP socket:
 *
 *     deno run -A testers/hold.ts tcp|udp PORT [--host ADDR] [--seconds N]
 *
 * Prints `{"ready":true,"proto":"tcp","port":5000,"host":"0.0.0.0","pid":123}` once bound (PORT 0: any free
 * port, the real one printed), holds the socket for N seconds or until SIGTERM/SIGINT, then closes it and prints
 * `{"closed":true,...,"held_ms":N,"reason":"timeout"|"SIGTERM"|"SIGINT"}` and exits 0.
 *
 * TCP uses Deno.listen (connections are accepted and closed at once); UDP uses node:dgram, which needs no
 * --unstable-net flag (Deno.listenDatagram does). Neither sets IPV6_V6ONLY, so a socket on "::" follows the
 * kernel's net.ipv6.bindv6only: 0 (the Linux default) makes it dual-stack, also taking IPv4, and then it
 * conflicts with 0.0.0.0 on the same port.
 *
 * The module also exports {@link openSocket}, {@link holdSocket} and {@link bindFailure}, used by transient.ts,
 * burst.ts and http.ts.
 * @module
 */
import dgram from "node:dgram";
import { isIP } from "node:net";
import {
  emit,
  parseCli,
  parseHost,
  parsePort,
  parseProto,
  parseSecondsMs,
  type Proto,
  runMain,
  stringOpt,
  TesterError,
} from "./args.ts";
import { describeHolders, findHolders } from "./kill_port.ts";

/** A bound socket held open by this process. */
export interface OpenedSocket {
  proto: Proto;
  host: string;
  /** The bound port (the kernel's choice when 0 was asked). */
  port: number;
  /** Close it (idempotent); resolves once closed. */
  close(): Promise<void>;
}

/** The ready line's fields. */
export function readyLine(s: OpenedSocket): Record<string, unknown> {
  return { ready: true, proto: s.proto, port: s.port, host: s.host, pid: Deno.pid };
}

function unprivilegedPortStart(): number {
  try {
    return Number(Deno.readTextFileSync("/proc/sys/net/ipv4/ip_unprivileged_port_start").trim());
  } catch {
    return 1024;
  }
}

/**
 * A bind failure as a {@link TesterError} with a clear message: in use (naming the holder, found through
 * netlink and /proc), no permission (privileged port as non-root), no such address, no IPv6; anything else
 * with the system's message.
 */
export function bindFailure(e: unknown, proto: Proto, host: string, port: number): TesterError {
  const code = (e as { code?: unknown })?.code;
  const msg = e instanceof Error ? e.message : String(e);
  const where = `port ${port}/${proto}`;
  if (e instanceof Deno.errors.AddrInUse || code === "EADDRINUSE") {
    let who: string;
    try {
      who = describeHolders(findHolders(port, [proto]).holders, host);
    } catch (err) {
      who = `its holder could not be looked up: ${err instanceof Error ? err.message : err}`;
    }
    return new TesterError(`${where} is already in use on ${host} (${who})`, { cause: e });
  }
  if (e instanceof Deno.errors.NotCapable) {
    return new TesterError(`no network permission to bind ${where} on ${host}: run with deno run -A`, {
      cause: e,
    });
  }
  if (e instanceof Deno.errors.PermissionDenied || code === "EACCES" || code === "EPERM") {
    const start = unprivilegedPortStart();
    if (port > 0 && port < start && Deno.uid() !== 0) {
      return new TesterError(
        `no permission to bind ${where} on ${host}: ports below ${start} need root or CAP_NET_BIND_SERVICE ` +
          `and this runs as uid ${Deno.uid()} (net.ipv4.ip_unprivileged_port_start = ${start}); ` +
          `use a port >= ${start} or run as root`,
        { cause: e },
      );
    }
    return new TesterError(`no permission to bind ${where} on ${host}: ${msg}`, { cause: e });
  }
  if (e instanceof Deno.errors.AddrNotAvailable || code === "EADDRNOTAVAIL") {
    return new TesterError(
      `cannot bind ${where} on ${host}: no such local address here (EADDRNOTAVAIL; is the interface up?)`,
      { cause: e },
    );
  }
  if (code === "EAFNOSUPPORT" || /address family not supported/i.test(msg)) {
    return new TesterError(`cannot bind ${where} on ${host}: IPv6 is not available here (EAFNOSUPPORT)`, {
      cause: e,
    });
  }
  return new TesterError(`cannot bind ${where} on ${host}: ${msg}`, { cause: e });
}

function openTcp(host: string, port: number): OpenedSocket {
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({ hostname: host, port, transport: "tcp" });
  } catch (e) {
    throw bindFailure(e, "tcp", host, port);
  }
  // accept and drop connections, so that clients are not left in the backlog
  const accepting = (async () => {
    try {
      for await (const conn of listener) conn.close();
    } catch { /* closed */ }
  })();
  let closed = false;
  return {
    proto: "tcp",
    host,
    port: listener.addr.port,
    async close() {
      if (closed) return;
      closed = true;
      listener.close();
      await accepting;
    },
  };
}

function openUdp(host: string, port: number): Promise<OpenedSocket> {
  const sock = dgram.createSocket({ type: isIP(host) === 6 ? "udp6" : "udp4" });
  return new Promise<OpenedSocket>((resolve, reject) => {
    const onError = (e: Error) => {
      try {
        sock.close();
      } catch { /* never bound */ }
      reject(bindFailure(e, "udp", host, port));
    };
    sock.once("error", onError);
    sock.bind(port, host, () => {
      sock.off("error", onError);
      sock.on("error", () => {}); // receive errors after the bind are not this program's business
      let closing: Promise<void> | undefined;
      resolve({
        proto: "udp",
        host,
        port: sock.address().port,
        close() {
          closing ??= new Promise<void>((done) => sock.close(() => done()));
          return closing;
        },
      });
    });
  });
}

/** Bind a TCP listener (listen(2) done) or a UDP socket on `host`:`port`; throws a {@link TesterError}. */
export async function openSocket(proto: Proto, host: string, port: number): Promise<OpenedSocket> {
  return proto === "tcp" ? openTcp(host, port) : await openUdp(host, port);
}

/** Why a hold ended. */
export type HoldEnd = "timeout" | "SIGTERM" | "SIGINT";

/**
 * Wait `ms` milliseconds (forever when undefined) or until SIGTERM/SIGINT, whichever comes first; the signal
 * listeners are removed afterwards.
 */
export async function waitOrSignal(ms: number | undefined): Promise<HoldEnd> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const listeners: [Deno.Signal, () => void][] = [];
  try {
    return await new Promise<HoldEnd>((resolve) => {
      for (const sig of ["SIGTERM", "SIGINT"] as const) {
        const fn = () => resolve(sig);
        Deno.addSignalListener(sig, fn);
        listeners.push([sig, fn]);
      }
      // an interval keeps the event loop alive even when nothing else does
      timer = ms === undefined ? setInterval(() => {}, 1 << 30) : setTimeout(() => resolve("timeout"), ms);
    });
  } finally {
    clearTimeout(timer);
    for (const [sig, fn] of listeners) Deno.removeSignalListener(sig, fn);
  }
}

/** Hold `sock` for `ms` (or until a signal), close it and return the closed line's fields. */
export async function holdSocket(
  sock: OpenedSocket,
  ms: number | undefined,
): Promise<Record<string, unknown>> {
  const t0 = performance.now();
  const reason = await waitOrSignal(ms);
  await sock.close();
  const heldMs = Math.round(performance.now() - t0);
  return {
    closed: true,
    proto: sock.proto,
    port: sock.port,
    host: sock.host,
    pid: Deno.pid,
    held_ms: heldMs,
    reason,
  };
}

/** The options shared by hold.ts and transient.ts: PROTO PORT and --host. */
export function parseProtoPortHost(cli: { positionals: string[]; values: Record<string, unknown> }) {
  const proto = parseProto("PROTO", cli.positionals[0]);
  const port = parsePort("PORT", cli.positionals[1], true);
  const h = cli.values.host;
  const host = typeof h === "string" ? parseHost("--host", h) : "0.0.0.0";
  return { proto, port, host };
}

/** Usage of hold.ts. */
export const USAGE = `hold.ts tcp|udp PORT [--host ADDR] [--seconds N]
  Open a TCP listener or a bound UDP socket on PORT (0: any free port) and hold it.
  --host ADDR    address to bind: 0.0.0.0 (default), ::, 127.0.0.1, ::1 or another literal
  --seconds N    close after N seconds (fractions allowed); default: until SIGTERM or SIGINT
  Prints {"ready":true,"proto":..,"port":..,"host":..,"pid":..} once bound and {"closed":true,...} when closed.
  Exit 1 when the port cannot be bound (in use, no permission), 2 for a bad argument.`;

async function main(args: string[]): Promise<number | "help"> {
  const cli = parseCli(args, {
    options: { host: { type: "string" }, seconds: { type: "string" } },
    positionals: ["PROTO", "PORT"],
  });
  if (cli === "help") return "help";
  const { proto, port, host } = parseProtoPortHost(cli);
  const seconds = stringOpt(cli, "seconds");
  const ms = seconds !== undefined ? parseSecondsMs("--seconds", seconds) : undefined;
  const sock = await openSocket(proto, host, port);
  emit(readyLine(sock));
  emit(await holdSocket(sock, ms));
  return 0;
}

if (import.meta.main) await runMain("hold", USAGE, () => main(Deno.args));
