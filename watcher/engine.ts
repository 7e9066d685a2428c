/**
 * The polling engine: scan every watched namespace, resolve owners, diff, and hand events to the sink. Used by
 * `deno task watch` (source "polling") and by the eBPF command as its fallback (source "fallback").
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { EventSink } from "../delivery/sink.ts";
import type { PortEvent, Source } from "../events/schema.ts";
import type { EnvSource } from "../infra/env.ts";
import type { WatcherConfig } from "./config.ts";
import {
  detectHostInfo,
  hostFallbackWarning,
  type Identity,
  identityOfPid,
  netnsInode,
} from "../pipeline/scope/identity.ts";
import {
  DEFAULT_CONTAINER_STATE_DIRS,
  DEFAULT_HOST_NAME_FILE,
} from "../pipeline/scope/attribution_settings.ts";
import { ContainerMetaLookup } from "../pipeline/scope/runtime_lookup.ts";
import { RuntimeSocketFilter } from "../pipeline/scope/runtime_sockets.ts";
import { NamespaceWatcher } from "../pipeline/scope/namespaces.ts";
import { observePorts } from "../pipeline/observe.ts";
import { PidResolver } from "../pipeline/pid_resolver.ts";
import type { ListeningSocket, SocketSource } from "../sources/socket.ts";
import { openSource } from "../sources/open_source.ts";
import { type PortChange, PortTracker } from "../pipeline/tracker.ts";
import { Reporter } from "../pipeline/reporter.ts";

const log = getLogger(["portwatch", "watcher"]);

/** One watched network namespace. */
interface Scope {
  netns: number;
  identity: Identity;
  source: SocketSource;
  path?: string;
  pid?: number;
}

/**
 * When the scans of one cycle happen: BURST_SCANS scans per SCAN_INTERVAL. By default they are spread evenly
 * over the cycle (at least BURST_DELAY apart): the same number of scans as the seed's burst, placed so that a
 * port held for a short while is more likely to be seen. BURST_SPREAD=0 clusters them BURST_DELAY apart and
 * then waits SCAN_INTERVAL, exactly as the seed's loop did.
 */
export function scanSchedule(
  c: Pick<WatcherConfig, "intervalMs" | "burstScans" | "burstDelayMs" | "burstSpread">,
): { offsets: number[]; cycleMs: number } {
  const n = Math.max(1, c.burstScans);
  if (!c.burstSpread) {
    return {
      offsets: Array.from({ length: n }, (_, i) => i * c.burstDelayMs),
      cycleMs: (n - 1) * c.burstDelayMs + c.intervalMs,
    };
  }
  const cycleMs = Math.max(c.intervalMs, n * c.burstDelayMs);
  const gap = Math.max(c.burstDelayMs, cycleMs / n);
  return { offsets: Array.from({ length: n }, (_, i) => Math.round(i * gap)), cycleMs };
}

/** One namespace's sockets and their owners, from {@link PollingEngine.rawScan}. */
export interface RawScan {
  netns: number;
  sockets: ListeningSocket[];
  owners: Map<number, number[]>;
}

/** Counters for logs, benchmarks and metrics. */
export interface EngineStats {
  scans: number;
  events: number;
  lastScanMs: number;
  scanErrors: number;
}

/** What the engine needs from its caller. */
export interface EngineOptions {
  config: WatcherConfig;
  sink: EventSink;
  env: EnvSource;
  /** "polling", or "fallback" when the eBPF command fell back to polling. */
  source?: Source;
  /** Source value used for the closes sent at shutdown. */
  shutdownSource?: Source;
}

/** The polling engine. */
export class PollingEngine {
  readonly tracker: PortTracker;
  readonly resolver = new PidResolver();
  /** Containers' names, images and compose labels from the runtimes' state (CONTAINER_STATE_DIRS), per id. */
  readonly containers: ContainerMetaLookup;
  /** Hides runtime-owned sockets (unless REPORT_RUNTIME_SOCKETS=1); the eBPF engines' ledger uses it too. */
  readonly runtimeSockets: RuntimeSocketFilter;
  readonly stats: EngineStats = { scans: 0, events: 0, lastScanMs: 0, scanErrors: 0 };
  readonly reporter: Reporter;
  #scopes = new Map<number, Scope>();
  #namespaces?: NamespaceWatcher;
  #self: Identity;
  #owner: string;
  #backendNote = "";
  #source: Source;
  #stopped = false;
  #wake?: () => void;

  constructor(readonly options: EngineOptions) {
    this.tracker = new PortTracker(options.config.graceMs);
    this.containers = new ContainerMetaLookup(
      options.config.containerStateDirs ?? DEFAULT_CONTAINER_STATE_DIRS,
    );
    this.runtimeSockets = new RuntimeSocketFilter({ report: options.config.reportRuntimeSockets ?? false });
    const host = detectHostInfo(options.env);
    this.#hostWarning = hostFallbackWarning(
      host,
      options.config.hostNameFile === undefined ? DEFAULT_HOST_NAME_FILE : options.config.hostNameFile,
    );
    this.#self = identityOfPid(options.env, host.host, "self", "/proc", this.containers);
    this.#source = options.source ?? "polling";
    const scope = options.config.allNetns ? "host-wide" : `netns:${netnsInode()}`;
    this.#owner = `${this.#self.host}/${this.#self.container_id ?? "-"}/${scope}`;
    this.reporter = new Reporter({
      sink: options.sink,
      tracker: this.tracker,
      resolver: this.resolver,
      snapshotPath: options.config.snapshotPath,
      owner: this.#owner,
      verbose: options.config.verbose,
      withWhere: options.config.allNetns,
      identityOf: (netns) => this.#scopes.get(netns)?.identity,
      containerMeta: (id) => this.containers.get(id),
    });
  }

  /** Set when the host's name could not be read (logged once by start()). */
  readonly #hostWarning: string | undefined;

  /** The identity of this watcher (host, container). */
  get identity(): Identity {
    return this.#self;
  }

  /** Which backend scans, for the start-up log. */
  get backend(): string {
    return this.#backendNote;
  }

  /** Set up scopes and read the snapshot; call once before scanning. */
  async start(): Promise<void> {
    const { config } = this.options;
    if (this.#hostWarning !== undefined) log.warn("{warning}", { warning: this.#hostWarning });
    await this.reporter.restore();
    if (config.allNetns) {
      this.#namespaces = new NamespaceWatcher("/proc", {
        env: this.options.env,
        containers: this.containers,
      });
      this.#refreshNamespaces();
    } else {
      const chosen = openSource(config.backend);
      this.#scopes.set(netnsInode(), { netns: netnsInode(), identity: this.#self, source: chosen.source });
      this.#noteBackend(chosen.source.name, chosen.fallbackReason);
    }
    // Namespaces in the snapshot that no longer exist: their ports closed while we were down.
    const live = new Set(this.#scopes.keys());
    const gone = new Set(this.tracker.open().map((p) => p.netns).filter((n) => !live.has(n)));
    for (const netns of gone) await this.#emit(this.tracker.dropNamespace(netns), this.#self);
  }

  #noteBackend(name: string, reason?: string) {
    const note = reason ? `${name} (netlink sock_diag unavailable: ${reason})` : name;
    if (note !== this.#backendNote) {
      this.#backendNote = note;
      if (reason) log.warn("scanning with {note}", { note });
    }
  }

  /** Apply namespace changes; returns the scopes that are gone (their ports close with their identity). */
  #refreshNamespaces(): Scope[] {
    const changes = this.#namespaces!.refresh();
    const dropped: Scope[] = [];
    for (const ns of changes.removed) {
      const scope = this.#scopes.get(ns.inode);
      if (!scope) continue;
      scope.source.close();
      this.#scopes.delete(ns.inode);
      dropped.push(scope);
    }
    for (const ns of [...changes.added, ...changes.memberChanged]) {
      const old = this.#scopes.get(ns.inode);
      // A namespace left with no process (pid 0: only its /run/netns name holds it) keeps who it was.
      const identity = ns.pid === 0 && old ? old.identity : ns.identity;
      if (old && old.source.name === "netlink") {
        old.identity = identity; // the netlink socket stays bound to the namespace
        continue;
      }
      old?.source.close();
      try {
        const chosen = openSource(this.options.config.backend, { path: ns.path, pid: ns.pid });
        this.#noteBackend(chosen.source.name, chosen.fallbackReason);
        this.#scopes.set(ns.inode, {
          netns: ns.inode,
          identity,
          source: chosen.source,
          path: ns.path,
          pid: ns.pid,
        });
      } catch (e) {
        log.warn("cannot watch network namespace {inode} ({path}): {error}", {
          inode: ns.inode,
          path: ns.path,
          error: (e as Error).message,
        });
      }
    }
    return dropped;
  }

  /**
   * Scan every namespace without diffing: its sockets (after the WATCH_PORTS filter) and their owners. Gone
   * namespaces have their ports closed first. For event-driven engines, which seed and reconcile with it.
   */
  async rawScan(refreshNamespaces = true): Promise<RawScan[]> {
    if (this.#namespaces && refreshNamespaces) {
      for (const gone of this.#refreshNamespaces()) {
        this.onNamespaceGone?.(gone.netns);
        await this.#emit(this.tracker.dropNamespace(gone.netns), gone.identity);
      }
    }
    const ports = this.options.config.ports;
    const out: RawScan[] = [];
    for (const scope of this.#scopes.values()) {
      let sockets;
      try {
        sockets = await scope.source.scan();
      } catch (e) {
        this.stats.scanErrors++;
        log.warn("scan of namespace {netns} failed: {error}", {
          netns: scope.netns,
          error: (e as Error).message,
        });
        continue;
      }
      if (ports) sockets = sockets.filter((s) => ports.has(s.port));
      const owners = this.resolver.resolve(sockets.map((s) => s.inode));
      out.push({ netns: scope.netns, sockets, owners });
    }
    return out;
  }

  /** Called with the inode of each namespace that is gone (event-driven engines drop their state for it). */
  onNamespaceGone?: (netns: number) => void;

  /** The identity of a watched namespace. */
  identityOf(netns: number): Identity | undefined {
    return this.#scopes.get(netns)?.identity;
  }

  /** True when `netns` is watched (refreshing the namespace list first in host-wide mode when unknown). */
  watches(netns: number): boolean {
    if (this.#scopes.has(netns)) return true;
    if (!this.#namespaces) return false;
    const now = Date.now();
    if (now - this.#lastRefresh < 200) return false;
    this.#lastRefresh = now;
    this.#refreshNamespaces(); // removals are handled by the next rawScan
    return this.#scopes.has(netns);
  }

  #lastRefresh = 0;

  /** Report changes to a namespace (its identity), as this engine's source. */
  report(changes: PortChange[], netns: number): Promise<PortEvent[]> {
    return this.#emit(changes, this.identityOf(netns) ?? this.#self);
  }

  /** One scan of every namespace; returns the events it produced (already handed to the sink). */
  async scanOnce(refreshNamespaces = true): Promise<PortEvent[]> {
    const started = performance.now();
    const out: PortEvent[] = [];
    for (const { netns, sockets, owners } of await this.rawScan(refreshNamespaces)) {
      const pidsOf = (inode: number) => owners.get(inode);
      const observed = observePorts(this.runtimeSockets.keep(netns, sockets, pidsOf), pidsOf);
      out.push(
        ...await this.#emit(
          this.tracker.observe(netns, observed, Date.now()),
          this.identityOf(netns) ?? this.#self,
        ),
      );
    }
    out.push(...await this.#emit(this.tracker.tick(Date.now()), this.#self));
    this.stats.scans++;
    this.stats.events = this.reporter.events;
    this.stats.lastScanMs = performance.now() - started;
    return out;
  }

  #emit(changes: PortChange[], identity: Identity, source = this.#source): Promise<PortEvent[]> {
    return this.reporter.report(changes, identity, source);
  }

  /** Scan in cycles (see {@link scanSchedule}) until stop() is called. */
  async run(): Promise<void> {
    const { offsets, cycleMs } = scanSchedule(this.options.config);
    while (!this.#stopped) {
      const cycleStart = Date.now();
      for (let i = 0; i < offsets.length && !this.#stopped; i++) {
        await this.#sleepUntil(cycleStart + offsets[i]);
        if (!this.#stopped) await this.scanOnce(i === 0);
      }
      await this.#sleepUntil(cycleStart + cycleMs);
    }
  }

  /** Sleep until `at`, waking on the way to report closes whose grace runs out before then. */
  async #sleepUntil(at: number): Promise<void> {
    for (;;) {
      const now = Date.now();
      if (this.#stopped || now >= at) return;
      const deadline = this.tracker.nextDeadline();
      if (deadline !== undefined && deadline <= now) {
        await this.#emit(this.tracker.tick(now), this.#self);
        continue;
      }
      await this.#sleep(Math.min(at, deadline ?? at) - now);
    }
  }

  #sleep(ms: number): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = undefined;
        resolve();
      }, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** Stop scanning; the run() loop returns after its current scan. */
  stop(): void {
    this.#stopped = true;
    this.#wake?.();
  }

  /**
   * Graceful shutdown: a close for every tracked port (source `shutdown`, or the one given), delivered within
   * the configured time or left in the spool; then the sources are closed.
   */
  async shutdown(): Promise<{ closes: number; delivered: boolean }> {
    this.stop();
    const closes = this.tracker.closeAll();
    const events = await this.#emit(closes, this.#self, this.options.shutdownSource ?? "shutdown");
    const delivered = await this.options.sink.flush(this.options.config.shutdownTimeoutMs);
    await this.reporter.settle();
    for (const s of this.#scopes.values()) s.source.close();
    this.#scopes.clear();
    return { closes: events.length, delivered };
  }
}
