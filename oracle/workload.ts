/**
 * Oracle: the seeded random workload, as pure data. A model of the holder processes (numbered p1, p2, ...) and
 * the sockets they hold (s1, s2, ...; one socket can be held by several processes after a fork) proposes the
 * next step; the test carries it out with real processes and tells the model what succeeded. The actions are
 * the situations the engines must follow: TCP listeners and UDP binds on IPv4 and IPv6, V6ONLY and dual-stack,
 * loopback and wildcard; SO_REUSEPORT twins in different processes; a forked child keeping a socket after its
 * parent closes its copy; processes that exit or are killed holding sockets; a random half of the sockets
 * closed; and client sockets (TCP established, UDP connected), which must never be reported.
 * @module
 */
import type { Rng } from "./rng.ts";

/** An address a socket may be bound to. */
export interface AddrChoice {
  family: 4 | 6;
  host: string;
  /** IPV6_V6ONLY for IPv6 sockets; null for IPv4 ones. */
  v6only: boolean | null;
}

/** Every address the workload binds: IPv4 and IPv6, wildcard and loopback, v6-only and dual-stack. */
export const ADDRS: readonly AddrChoice[] = [
  { family: 4, host: "0.0.0.0", v6only: null },
  { family: 4, host: "127.0.0.1", v6only: null },
  { family: 6, host: "::", v6only: true },
  { family: 6, host: "::", v6only: false },
  { family: 6, host: "::1", v6only: true },
  { family: 6, host: "::ffff:127.0.0.1", v6only: false },
];

/** A listening TCP or bound UDP socket to open. */
export interface SocketSpec extends AddrChoice {
  proto: "tcp" | "udp";
  port: number;
  reuseport: boolean;
}

/** A client socket: TCP connected to one of the workload's listeners, or a connected UDP socket. */
export interface ClientSpec {
  proto: "tcp" | "udp";
  host: string;
  port: number;
}

/** One thing a holder does. */
export type Action =
  | { kind: "spawn"; proc: number }
  | {
    kind: "open";
    proc: number;
    sock: number;
    spec: SocketSpec;
    /** A SO_REUSEPORT twin of this socket (same spec, another process). */
    twinOf?: number;
    /** Another address on the port of this socket (same proto and port). */
    besideOf?: number;
  }
  | { kind: "connect"; proc: number; sock: number; client: ClientSpec }
  | { kind: "fork"; proc: number; child: number }
  | { kind: "close"; proc: number; sock: number; why: "close" | "parent-close" | "half" }
  | { kind: "exit"; proc: number; how: "exit" | "kill" };

/** A process of the model. */
interface ProcModel {
  parent?: number;
  socks: Set<number>;
}

/** A socket of the model: a listening/bound one (spec) or a client one. */
interface SockModel {
  spec?: SocketSpec;
  client?: ClientSpec;
}

/** Workload limits. */
export interface WorkloadOptions {
  /** The ports sockets are bound to (few, so that ports are shared and reused). */
  ports: readonly number[];
  /** Processes alive at most. */
  maxProcs: number;
}

const addrText = (a: { family: number; host: string }) => (a.family === 6 ? `[${a.host}]` : a.host);

/** Text of a socket spec: "tcp [::]:20100 dual-stack reuseport". */
export function specText(s: SocketSpec): string {
  const v6 = s.v6only === null ? "" : s.v6only ? " v6only" : " dual-stack";
  return `${s.proto} ${addrText(s)}:${s.port}${v6}${s.reuseport ? " reuseport" : ""}`;
}

/** The model and the step generator. */
export class Workload {
  readonly procs = new Map<number, ProcModel>();
  readonly socks = new Map<number, SockModel>();
  #nextProc = 1;
  #nextSock = 1;

  constructor(readonly rng: Rng, readonly options: WorkloadOptions) {}

  /** Holders of socket `sock` now. */
  holders(sock: number): number[] {
    return [...this.procs].filter(([, p]) => p.socks.has(sock)).map(([id]) => id);
  }

  #listening(proc: number): number[] {
    return [...this.procs.get(proc)!.socks].filter((s) => this.socks.get(s)?.spec);
  }

  #randomSpec(): SocketSpec {
    const { rng, options } = this;
    const proto = rng.pick(["tcp", "udp"] as const);
    const used = new Set(
      [...this.socks.values()].filter((s) => s.spec?.proto === proto).map((s) => s.spec!.port),
    );
    const free = options.ports.filter((p) => !used.has(p));
    // Half the time a port of that protocol nobody uses (the bind succeeds); else any (shared ports, conflicts).
    const port = free.length > 0 && rng.chance(0.5) ? rng.pick(free) : rng.pick(options.ports);
    return { proto, port, reuseport: rng.chance(0.5), ...rng.pick(ADDRS) };
  }

  /** The next step: one action, chosen at random among those possible now. */
  nextStep(): Action[] {
    const { rng, options } = this;
    const alive = [...this.procs.keys()];
    if (alive.length === 0) return [{ kind: "spawn", proc: this.#nextProc++ }];
    const withListening = alive.filter((p) => this.#listening(p).length > 0);
    const twins = [...this.socks].filter(([, s]) => s.spec?.reuseport).flatMap(([sock]) =>
      alive.filter((p) => !this.procs.get(p)!.socks.has(sock)).map((proc) => ({ sock, proc }))
    );
    const parentCloses = alive.flatMap((parent) =>
      this.#listening(parent).filter((sock) =>
        alive.some((c) => this.procs.get(c)!.parent === parent && this.procs.get(c)!.socks.has(sock))
      ).map((sock) => ({ parent, sock }))
    );
    const listening = [...this.socks].filter(([, s]) => s.spec);
    const tcpListening = listening.map(([, s]) => s.spec!).filter((s) => s.proto === "tcp");
    const kind = rng.weighted({
      spawn: alive.length < options.maxProcs ? 1 : 0,
      open: 4,
      twin: twins.length > 0 ? 2.5 : 0,
      beside: listening.length > 0 ? 1.5 : 0,
      fork: alive.length < options.maxProcs && withListening.length > 0 ? 2.5 : 0,
      parentClose: parentCloses.length > 0 ? 4 : 0,
      close: withListening.length > 0 ? 2 : 0,
      exit: 1,
      connect: 0.7,
    });
    switch (kind) {
      case "spawn":
        return [{ kind: "spawn", proc: this.#nextProc++ }];
      case "open":
        return [{ kind: "open", proc: rng.pick(alive), sock: this.#nextSock++, spec: this.#randomSpec() }];
      case "twin": {
        const { sock, proc } = rng.pick(twins);
        return [{
          kind: "open",
          proc,
          sock: this.#nextSock++,
          spec: this.socks.get(sock)!.spec!,
          twinOf: sock,
        }];
      }
      case "beside": {
        const [sock, { spec }] = rng.pick(listening);
        const addr = rng.pick(ADDRS.filter((a) => a.host !== spec!.host || a.v6only !== spec!.v6only));
        const besideSpec = { ...spec!, ...addr, reuseport: rng.chance(0.5) };
        return [{
          kind: "open",
          proc: rng.pick(alive),
          sock: this.#nextSock++,
          spec: besideSpec,
          besideOf: sock,
        }];
      }
      case "fork":
        return [{ kind: "fork", proc: rng.pick(withListening), child: this.#nextProc++ }];
      case "parentClose": {
        const { parent, sock } = rng.pick(parentCloses);
        return [{ kind: "close", proc: parent, sock, why: "parent-close" }];
      }
      case "close": {
        const proc = rng.pick(withListening);
        return [{ kind: "close", proc, sock: rng.pick(this.#listening(proc)), why: "close" }];
      }
      case "exit":
        return [{ kind: "exit", proc: rng.pick(alive), how: rng.pick(["exit", "kill"] as const) }];
      default: {
        const client: ClientSpec = tcpListening.length > 0 && rng.chance(0.6)
          ? clientOf(rng.pick(tcpListening), rng)
          : { proto: "udp", host: rng.pick(["127.0.0.1", "::1"]), port: rng.pick(options.ports) };
        return [{ kind: "connect", proc: rng.pick(alive), sock: this.#nextSock++, client }];
      }
    }
  }

  /**
   * How many actions the next step carries out back to back before the check: mostly 1, sometimes 2 to 4 (so
   * that an engine also sees changes that follow each other closely, e.g. a fork and its parent's close).
   */
  stepLength(): number {
    return this.rng.chance(0.7) ? 1 : 2 + this.rng.int(3);
  }

  /** Close a random half of every process's copies of its listening/bound sockets, as one step. */
  closeHalf(): Action[] {
    const copies = [...this.procs].flatMap(([proc]) => this.#listening(proc).map((sock) => ({ proc, sock })));
    return this.rng.shuffle(copies).slice(0, Math.ceil(copies.length / 2)).map(({ proc, sock }) => ({
      kind: "close",
      proc,
      sock,
      why: "half",
    }));
  }

  /** End every process (exit or SIGKILL), one step: afterwards nothing is open. */
  endAll(): Action[] {
    return [...this.procs.keys()].map((proc) => ({
      kind: "exit",
      proc,
      how: this.rng.pick(["exit", "kill"] as const),
    }));
  }

  /** Record the outcome of `action` (`ok`: it succeeded; a failed bind changes nothing). */
  applied(action: Action, ok: boolean): void {
    if (!ok) return;
    switch (action.kind) {
      case "spawn":
        this.procs.set(action.proc, { socks: new Set() });
        break;
      case "open":
        this.socks.set(action.sock, { spec: action.spec });
        this.procs.get(action.proc)!.socks.add(action.sock);
        break;
      case "connect":
        this.socks.set(action.sock, { client: action.client });
        this.procs.get(action.proc)!.socks.add(action.sock);
        break;
      case "fork":
        this.procs.set(action.child, {
          parent: action.proc,
          socks: new Set(this.procs.get(action.proc)!.socks),
        });
        break;
      case "close":
        this.procs.get(action.proc)?.socks.delete(action.sock);
        this.#collect();
        break;
      case "exit":
        this.procs.delete(action.proc);
        this.#collect();
        break;
    }
  }

  /** Forget sockets no process holds. */
  #collect(): void {
    const held = new Set([...this.procs.values()].flatMap((p) => [...p.socks]));
    for (const sock of this.socks.keys()) if (!held.has(sock)) this.socks.delete(sock);
  }

  /** One line for an action, for logs and failure messages: "p2 fork -> p4 (shares s1,s3)". */
  describe(action: Action): string {
    const p = `p${action.proc}`;
    switch (action.kind) {
      case "spawn":
        return `${p} spawn`;
      case "open":
        return `${p} open s${action.sock} ${specText(action.spec)}${
          action.twinOf ? ` (twin of s${action.twinOf}, held by ${this.#procsText(action.twinOf)})` : ""
        }${
          action.besideOf ? ` (beside s${action.besideOf}, held by ${this.#procsText(action.besideOf)})` : ""
        }`;
      case "connect":
        return `${p} connect s${action.sock} ${action.client.proto} to ${
          addrText({ family: action.client.host.includes(":") ? 6 : 4, host: action.client.host })
        }:${action.client.port} (a client socket: not a port)`;
      case "fork":
        return `${p} fork -> p${action.child} (shares ${this.#socksText(action.proc)})`;
      case "close": {
        const others = this.holders(action.sock).filter((h) => h !== action.proc);
        const spec = this.socks.get(action.sock)?.spec;
        return `${p} ${action.why} s${action.sock}${spec ? ` ${specText(spec)}` : ""}${
          others.length ? ` (still held by ${others.map((o) => `p${o}`).join(",")})` : " (last holder)"
        }`;
      }
      case "exit":
        return `${p} ${action.how === "kill" ? "SIGKILL" : "exit"} holding ${this.#socksText(action.proc)}`;
    }
  }

  #procsText(sock: number): string {
    return this.holders(sock).map((h) => `p${h}`).join(",") || "nobody";
  }

  #socksText(proc: number): string {
    const socks = [...(this.procs.get(proc)?.socks ?? [])];
    return socks.length ? socks.map((s) => `s${s}`).join(",") : "nothing";
  }
}

/** A TCP client of listener `spec`: to its loopback address of the right family. */
export function clientOf(spec: SocketSpec, rng: Rng): ClientSpec {
  const host = spec.host === "0.0.0.0" || spec.host === "::ffff:127.0.0.1"
    ? "127.0.0.1"
    : spec.host === "::"
    ? (spec.v6only ? "::1" : rng.pick(["::1", "127.0.0.1"]))
    : spec.host;
  return { proto: "tcp", host, port: spec.port };
}
