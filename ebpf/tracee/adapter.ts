/**
 * The Tracee engine's adapter: Tracee JSON lines in, portwatch {@link SocketEvent}s out, in order. How tracee
 * is configured is in settings.ts, how it is run (or a file of its output read) in run.ts.
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { SocketEvent } from "../socket_event.ts";
import { parseTraceeLine } from "./parse.ts";

const log = getLogger(["portwatch", "tracee"]);

/** Counts of what the adapter saw. */
export interface TraceeStats {
  /** Lines that gave socket events. */
  used: number;
  /** Lines not used (not JSON, other events, non-IP sockets, threads, malformed); each logged at debug. */
  skipped: number;
  /** Socket events yielded (the adapter may add closes a line implies, and drop dups of fds it does not know). */
  events: number;
}

/** What the adapter remembers about one fd of one process. */
interface FdState {
  proto?: "tcp" | "udp";
  family?: 4 | 6;
  addr?: string;
  port?: number;
  /** Made with SOCK_CLOEXEC: gone at the process's next exec. */
  cloexec?: boolean;
}

/**
 * Turns Tracee lines into socket events, keeping a per-(pid, fd) table so that a bind learns its protocol
 * from the socket() that made the fd, a `listen` syscall learns its address from the bind, forks copy the
 * table and close/exit forget it. A dup of a socket fd it knows is passed on (of another fd, dropped), after a
 * `close` of the fd it replaced when that was a socket fd it knows (dup2/dup3 close it); an exec is passed on
 * after a `close` of each fd made with SOCK_CLOEXEC (gone at exec; an fcntl that cleared the flag is not seen).
 * Blank lines are ignored (not counted).
 */
export class TraceeAdapter {
  /** Used/skipped line and event counts. */
  readonly stats: TraceeStats = { used: 0, skipped: 0, events: 0 };
  #fds = new Map<number, Map<number, FdState>>();
  #tracked = 0;

  /** @param maxTracked most fds remembered; past it the oldest process's table is dropped. */
  constructor(readonly maxTracked = 200_000) {}

  /** Consume one line; the socket events it gives, in order (often none). */
  push(line: string): SocketEvent[] {
    if (line.trim() === "") return [];
    const result = parseTraceeLine(line);
    if ("skip" in result) {
      this.stats.skipped++;
      log.debug("Skipped Tracee line: {reason}", { reason: result.skip, line: line.slice(0, 300) });
      return [];
    }
    this.stats.used++;
    const events = result.events.flatMap((e) => this.#track(e));
    this.stats.events += events.length;
    return events;
  }

  /** Socket events from a stream of lines, in order. */
  async *events(lines: AsyncIterable<string> | Iterable<string>): AsyncGenerator<SocketEvent> {
    for await (const line of lines) yield* this.push(line);
  }

  /** How many fds are remembered (for tests and diagnostics). */
  get trackedFds(): number {
    return this.#tracked;
  }

  #table(pid: number, create: true): Map<number, FdState>;
  #table(pid: number, create: false): Map<number, FdState> | undefined;
  #table(pid: number, create: boolean): Map<number, FdState> | undefined {
    let t = this.#fds.get(pid);
    if (!t && create) {
      if (this.#tracked >= this.maxTracked) this.#dropOldest();
      t = new Map();
      this.#fds.set(pid, t);
    }
    return t;
  }

  #set(pid: number, fd: number, state: FdState): void {
    const t = this.#table(pid, true);
    if (!t.has(fd)) this.#tracked++;
    t.set(fd, state);
  }

  #forgetPid(pid: number): void {
    const t = this.#fds.get(pid);
    if (t) this.#tracked -= t.size;
    this.#fds.delete(pid);
  }

  #dropOldest(): void {
    const oldest = this.#fds.keys().next();
    if (!oldest.done) this.#forgetPid(oldest.value);
  }

  /** Update the fd table from e, and fill in what the table knows (mutates e); the events e stands for. */
  #track(e: SocketEvent): SocketEvent[] {
    const fd = e.fd;
    switch (e.kind) {
      case "socket":
        if (fd !== undefined && !e.failed) {
          this.#set(e.pid, fd, { proto: e.proto, family: e.family, ...(e.cloexec ? { cloexec: true } : {}) });
        }
        return [e];
      case "bind": {
        if (fd === undefined) return [e];
        const known = this.#table(e.pid, false)?.get(fd);
        if (e.proto === undefined && known?.proto !== undefined) {
          e.proto = known.proto;
          reorder(e);
        }
        if (!e.failed) {
          this.#set(e.pid, fd, { ...known, proto: e.proto, family: e.family, addr: e.addr, port: e.port });
        }
        return [e];
      }
      case "listen": {
        if (fd === undefined) return [e];
        const known = this.#table(e.pid, false)?.get(fd);
        if (e.port === undefined && known?.port !== undefined) {
          e.family = known.family;
          e.addr = known.addr;
          e.port = known.port;
          reorder(e);
        }
        if (!e.failed) {
          this.#set(e.pid, fd, { ...known, proto: "tcp", family: e.family, addr: e.addr, port: e.port });
        }
        return [e];
      }
      case "close": {
        // Linux releases the fd even when close() reports EINTR/EIO, so forget it whatever the result.
        if (fd !== undefined) this.#forget(e.pid, fd);
        return [e];
      }
      case "dup": {
        if (fd === undefined || e.oldFd === undefined) return [];
        const t = this.#table(e.pid, false);
        const old = t?.get(e.oldFd);
        const out: SocketEvent[] = [];
        if (t?.has(fd)) out.push(this.#closeOf(e, fd)); // replaced (dup2/dup3), or stale (dup: it was free)
        this.#forget(e.pid, fd);
        if (old) {
          // dup, dup2: the copy is not close-on-exec; dup3 says.
          this.#set(e.pid, fd, { ...old, cloexec: e.cloexec === true });
          out.push(e);
        }
        return out;
      }
      case "exec": {
        const t = this.#table(e.pid, false);
        const out: SocketEvent[] = [];
        for (const [f, s] of t ?? []) {
          if (!s.cloexec) continue;
          out.push(this.#closeOf(e, f));
          this.#forget(e.pid, f);
        }
        out.push(e);
        return out;
      }
      case "exit":
        this.#forgetPid(e.pid);
        return [e];
      case "fork": {
        const t = this.#table(e.pid, false);
        if (!t || e.childPid === undefined) return [e];
        this.#forgetPid(e.childPid);
        for (const [f, s] of t) this.#set(e.childPid, f, { ...s });
        return [e];
      }
      default:
        return [e];
    }
  }

  /** Forget fd of pid. */
  #forget(pid: number, fd: number): void {
    const t = this.#table(pid, false);
    if (t?.delete(fd)) this.#tracked--;
    if (t?.size === 0) this.#fds.delete(pid);
  }

  /** The close that event `e` (a dup over fd, an exec) implies for fd. */
  #closeOf(e: SocketEvent, fd: number): SocketEvent {
    const c: SocketEvent = { ts: e.ts, kind: "close", pid: e.pid };
    if (e.comm !== undefined) c.comm = e.comm;
    c.fd = fd;
    if (e.cgroupId !== undefined) c.cgroupId = e.cgroupId;
    if (e.containerId !== undefined) c.containerId = e.containerId;
    if (e.containerName !== undefined) c.containerName = e.containerName;
    return c;
  }
}

const KEY_ORDER: (keyof SocketEvent)[] = [
  "ts",
  "kind",
  "pid",
  "childPid",
  "comm",
  "fd",
  "oldFd",
  "sk",
  "proto",
  "family",
  "addr",
  "port",
  "netns",
  "cgroupId",
  "containerId",
  "containerName",
  "failed",
  "cloexec",
];

/** Put e's keys back in the usual order after filling fields in (for readable JSON). */
function reorder(e: SocketEvent): void {
  const copy = { ...e } as Record<string, unknown>;
  for (const k of Object.keys(copy)) delete (e as unknown as Record<string, unknown>)[k];
  for (const k of KEY_ORDER) {
    if (copy[k] !== undefined) (e as unknown as Record<string, unknown>)[k] = copy[k];
  }
}
