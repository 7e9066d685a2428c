/**
 * The native eBPF engine's source: portwatch's own CO-RE tracepoint programs (portwatch.bpf.c, shipped compiled
 * as portwatch.bpf.o), loaded and attached through libbpf (libbpf.ts), their records read from one ring buffer
 * for every CPU straight from its mmap'ed pages (ring.ts, record.ts). Records come in order: no reorder window.
 * Idle, the source waits in poll(2) off the JS thread; busy, it drains every {@link DRAIN_MS} ms, so a storm
 * costs one wake-up per drain, not one per record; a burst is handed over in chunks of {@link CHUNK} records.
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { EngineUnavailableError, type SocketEventSource } from "../event_source.ts";
import type { SocketEvent } from "../socket_event.ts";
import { ensureTracefs } from "../tracefs.ts";
import { type BpfMap, BpfObject, libbpf } from "./libbpf.ts";
import { FdWaiter, Mapping, pageSize } from "./mapping.ts";
import { decodeRecord } from "./record.ts";
import { RingReader } from "./ring.ts";

const log = getLogger(["portwatch", "libbpf"]);

/** The compiled programs (built by `deno task bpf build` from portwatch.bpf.c). */
export const OBJECT_PATH = new URL("./portwatch.bpf.o", import.meta.url).pathname;

/**
 * While records keep coming, the ring is drained this often (ms): the most a record waits in a burst, and what
 * bounds the wake-ups and reports (each drain is a timer wake-up, a report, a snapshot write and a POST: ~1 ms
 * of CPU on a small VM). A record after a quiet spell is read at once.
 */
export const DRAIN_MS = 20;

/**
 * Once records have kept coming for {@link SUSTAINED_AFTER_MS} without a quiet drain (a storm, not a burst),
 * the ring is drained this often instead (ms): half the reports for the same records, each still at most this
 * long in the ring. A burst of 1,000 ports is over well before; the first quiet drain goes back to DRAIN_MS.
 */
export const SUSTAINED_DRAIN_MS = 40;

/** How long records must keep coming before the drain interval stretches (ms). */
export const SUSTAINED_AFTER_MS = 1_000;

/** At most this many records are handed over at once; the engine reports them before the next chunk. */
export const CHUNK = 256;

/** The ring's default size (bytes): ~14,500 records of 72 bytes. */
export const RING_BYTES = 1 << 20;

/** The init pid namespace's inode (PROC_PID_INIT_INO): the programs report pids as the host numbers them. */
const INIT_PID_NS = 0xeffffffc;

/** What the kernel side filters. */
export interface LibbpfOptions {
  /** Only sockets of this network namespace (inode); absent: every namespace. */
  netns?: number;
  /** Only these ports; absent: every port. */
  ports?: { has(port: number): boolean };
  /** The ring's size in bytes (a power of two, at least a page; default {@link RING_BYTES}). */
  ringBytes?: number;
  /** The object file (default {@link OBJECT_PATH}). */
  objectPath?: string;
}

function kernelTooOld(release: string): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) return false;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major < 5 || (major === 5 && minor < 15);
}

/** Why the native engine cannot run here, or undefined when it may try (checks that need no loading). */
export function libbpfUnavailableReason(objectPath = OBJECT_PATH): string | undefined {
  if (Deno.build.os !== "linux") return `this is ${Deno.build.os}, not Linux`;
  if (Deno.build.arch !== "x86_64") {
    return `the shipped object is built for x86_64; this is ${Deno.build.arch}`;
  }
  if (Deno.uid() !== 0) return `needs root (running as uid ${Deno.uid()})`;
  const release = Deno.osRelease();
  if (kernelTooOld(release)) {
    return `kernel ${release} is too old (needs 5.15: BPF ring buffer, bpf_task_pt_regs)`;
  }
  try {
    Deno.statSync("/sys/kernel/btf/vmlinux");
  } catch {
    return "the kernel has no BTF (/sys/kernel/btf/vmlinux is missing: CONFIG_DEBUG_INFO_BTF)";
  }
  try {
    if (Deno.statSync("/proc/self/ns/pid").ino !== INIT_PID_NS) {
      return "not in the host's pid namespace (the programs report host pids; compose: pid: host)";
    }
  } catch { /* no /proc/self/ns: let loading say */ }
  try {
    Deno.statSync(objectPath);
  } catch {
    return `the compiled programs are missing (${objectPath}; build them with deno task bpf build)`;
  }
  try {
    libbpf();
  } catch (e) {
    return (e as Error).message;
  }
  return undefined;
}

/** Load and attach the programs; throws EngineUnavailableError saying why they cannot run. */
export async function startLibbpf(options: LibbpfOptions = {}): Promise<LibbpfSource> {
  const objectPath = options.objectPath ?? OBJECT_PATH;
  const why = libbpfUnavailableReason(objectPath);
  if (why) throw new EngineUnavailableError("libbpf", why);
  const tracefs = await ensureTracefs();
  if (tracefs) throw new EngineUnavailableError("libbpf", tracefs);
  const started = performance.now();
  const obj = BpfObject.open(objectPath);
  try {
    const ringBytes = options.ringBytes ?? RING_BYTES;
    if (ringBytes < pageSize() || (ringBytes & (ringBytes - 1)) !== 0) {
      throw new RangeError(`ring size ${ringBytes}: a power of two of at least ${pageSize()} bytes`);
    }
    obj.setMaxEntries("events", ringBytes);
    try {
      obj.load();
    } catch (e) {
      throw new EngineUnavailableError("libbpf", `loading the programs failed: ${(e as Error).message}`);
    }
    const source = new LibbpfSource(obj, ringBytes);
    try {
      source.configure(options);
    } catch (e) {
      source.release(); // the object, the mappings and the eventfd
      throw e;
    }
    try {
      source.attached = obj.attachAll();
    } catch (e) {
      source.release();
      throw new EngineUnavailableError("libbpf", `attaching the programs failed: ${(e as Error).message}`);
    }
    log.debug("loaded and attached {n} programs in {ms} ms", {
      n: source.attached.length,
      ms: Math.round(performance.now() - started),
    });
    return source;
  } catch (e) {
    obj.close();
    throw e;
  }
}

const u32 = (n: number) => new Uint8Array(new Uint32Array([n]).buffer);
/** The key of a one-entry array map. */
const ZERO_KEY = u32(0);

/** The loaded programs and their ring. */
export class LibbpfSource implements SocketEventSource {
  readonly name = "libbpf";
  /** A read hands over what the ring held: the engine reports it at once. */
  readonly gatherMs = 0;
  /** A record waits at most one drain, then the engine's turn. */
  readonly settleMs = 2 * DRAIN_MS + 20;
  readonly ready = Promise.resolve();
  /** The programs attached, by name. */
  attached: string[] = [];
  /** Records that found the ring full. */
  lost = 0;
  readonly #obj: BpfObject;
  readonly #holders: BpfMap;
  readonly #drops: BpfMap;
  readonly #consumer: Mapping;
  readonly #producer: Mapping;
  readonly #reader: RingReader;
  readonly #waiter: FdWaiter;
  #stopping = false;
  #running?: Promise<string>;
  #released = false;

  constructor(obj: BpfObject, ringBytes: number) {
    this.#obj = obj;
    this.#holders = obj.map("holders");
    this.#drops = obj.map("drops");
    const ring = obj.map("events");
    const page = pageSize();
    this.#consumer = new Mapping(ring.fd, page, 0, true);
    try {
      this.#producer = new Mapping(ring.fd, page + 2 * ringBytes, page, false);
    } catch (e) {
      this.#consumer.close();
      throw e;
    }
    this.#reader = new RingReader({
      consumer: this.#consumer.bytes(),
      producer: this.#producer.bytes(0, page),
      data: this.#producer.bytes(page),
    });
    try {
      this.#waiter = new FdWaiter(ring.fd);
    } catch (e) {
      this.#consumer.close();
      this.#producer.close();
      throw e;
    }
  }

  /** Set the kernel-side filters (before attaching). */
  configure(options: LibbpfOptions): void {
    const settings = new Uint8Array(8);
    const v = new DataView(settings.buffer);
    v.setUint32(0, options.netns ?? 0, true);
    v.setUint32(4, options.ports ? 1 : 0, true);
    if (options.ports) {
      const words = new BigUint64Array(1024);
      for (let port = 1; port <= 65535; port++) {
        if (options.ports.has(port)) words[port >> 6] |= 1n << BigInt(port & 63);
      }
      const ports = this.#obj.map("ports");
      for (let i = 0; i < words.length; i++) {
        if (words[i] !== 0n) ports.update(u32(i), new Uint8Array(words.buffer, i * 8, 8).slice());
      }
    }
    this.#obj.map("settings").update(u32(0), settings);
  }

  /** The engine found these holders by scanning: their forks, closes, execs and exits are recorded from now. */
  adopt(pids: Iterable<number>): void {
    if (this.#released) return;
    const one = new Uint8Array([1]);
    for (const pid of pids) {
      try {
        this.#holders.update(u32(pid), one);
      } catch (e) {
        log.warn("cannot follow holder {pid}: {error}", { pid, error: (e as Error).message });
        return; // the map is full: the next ones would fail too
      }
    }
  }

  #warnedAt = -Infinity;
  #warnedLost = 0;

  /** Say that records were lost: at once, then at most once a minute while losses go on (with the count). */
  #warnLost(lost: number): void {
    const now = performance.now();
    if (now - this.#warnedAt < 60_000) return;
    log.warn(
      "the ring was full: {n} record(s) lost ({total} since start; ring of {bytes} bytes, EBPF_RING_KB); " +
        "reconciling now",
      { n: lost - this.#warnedLost, total: lost, bytes: this.#reader.view.byteLength / 2 },
    );
    this.#warnedAt = now;
    this.#warnedLost = lost;
  }

  /** The drain interval after records have kept coming for `busyMs`. */
  drainMs(busyMs: number): number {
    return busyMs >= SUSTAINED_AFTER_MS ? SUSTAINED_DRAIN_MS : DRAIN_MS;
  }

  /** Records that found the ring full, as the kernel counted them. */
  #readLost(): number {
    this.#drops.lookup(ZERO_KEY, this.#lostBytes);
    return Number(this.#lostValue[0]);
  }

  /** The drops counter's value, read into the same buffer at every drain. */
  readonly #lostValue = new BigUint64Array(1);
  readonly #lostBytes = new Uint8Array(this.#lostValue.buffer);

  run(
    onEvent: (e: SocketEvent) => void,
    _onBehind?: () => void,
    onLost?: (lost: number) => void,
  ): Promise<string> {
    // Stopped before it ran: the ring is unmapped, nothing to read.
    if (this.#stopping && !this.#running) return Promise.resolve("stopped");
    this.#running ??= this.#loop(onEvent, onLost);
    return this.#running;
  }

  /** Hand over what the ring holds, a chunk at a time; returns how many records. */
  async #drain(onEvent: (e: SocketEvent) => void): Promise<number> {
    let total = 0;
    for (;;) {
      const now = Date.now();
      const n = this.#reader.read(CHUNK, (view, at) => {
        const e = decodeRecord(view, at, now);
        if (e) onEvent(e);
      });
      total += n;
      if (n < CHUNK || this.#stopping) return total;
      // More to read: the engine reports this chunk first (its flush runs in a microtask, its report after).
      await new Promise((r) => setTimeout(r, 0));
    }
  }

  async #loop(onEvent: (e: SocketEvent) => void, onLost?: (lost: number) => void): Promise<string> {
    /** When the records that keep coming began (the first drain after a quiet one). */
    let busySince: number | undefined;
    try {
      while (!this.#stopping) {
        if (this.#reader.pending() === 0) {
          busySince = undefined;
          if (!(await this.#waiter.wait())) break;
        }
        if (this.#stopping) break;
        const n = await this.#drain(onEvent);
        const lost = this.#readLost();
        if (lost > this.lost) {
          this.#warnLost(lost);
          this.lost = lost;
          onLost?.(lost);
        }
        // Busy: the next records are read after a drain interval, not as each arrives. Nothing read with
        // records pending: the oldest is still being written (BUSY); a moment, then again (no spinning).
        if (n > 0) {
          const now = performance.now();
          const since = busySince ??= now;
          await new Promise((r) => setTimeout(r, this.drainMs(now - since)));
        } else if (this.#reader.pending() > 0) await new Promise((r) => setTimeout(r, 1));
      }
      await this.#drain(onEvent); // what came before the stop
      return "stopped";
    } catch (e) {
      return `the ring reader failed: ${(e as Error).message}`;
    }
  }

  /** Stop reading (what is in the ring is read first), detach the programs and free everything. */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#waiter.wake();
    await this.#running;
    this.release();
  }

  /** Free the programs, maps and mappings (once). */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#obj.close();
    this.#consumer.close();
    this.#producer.close();
    this.#waiter.close();
  }
}
