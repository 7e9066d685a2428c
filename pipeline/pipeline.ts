/**
 * The pipeline every engine feeds, written once: scopes (which namespaces, who they are), scans of them (sockets
 * and their holders), the diff (open, change, close, with the close grace), enrichment and report (wire events,
 * the seed's log lines, the snapshot, delivery) and the closes at shutdown. An engine decides *when* to look
 * (a scan loop, or socket events); the pipeline does the rest.
 *
 * @example
 * ```ts
 * const pipeline = new Pipeline({ config, sink, env, source: "polling", shutdownSource: "shutdown" });
 * await pipeline.start();
 * for (const scan of await pipeline.scan()) await pipeline.observe(scan);
 * await pipeline.shutdown();
 * ```
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { EventSink } from "../delivery/sink.ts";
import type { PortEvent, Source } from "../events/schema.ts";
import type { EnvSource } from "../infra/env.ts";
import type { PortSet } from "../infra/port_list.ts";
import type { Backend } from "../sources/open_source.ts";
import type { ListeningSocket } from "../sources/socket.ts";
import { DEFAULT_CONTAINER_STATE_DIRS, DEFAULT_HOST_NAME_FILE } from "./scope/attribution_settings.ts";
import {
  detectHostInfo,
  hostFallbackWarning,
  type Identity,
  identityOfPid,
  netnsInode,
} from "./scope/identity.ts";
import { ContainerMetaLookup } from "./scope/runtime_lookup.ts";
import { RuntimeSocketFilter } from "./scope/runtime_sockets.ts";
import { observePorts, type PortObservation } from "./observe.ts";
import { PidResolver } from "./pid_resolver.ts";
import { Enricher } from "./enrich.ts";
import { Reporter } from "./reporter.ts";
import { Scopes } from "./scopes.ts";
import { type PortChange, PortTracker } from "./tracker.ts";

const log = getLogger(["portwatch", "watcher"]);

/** The settings the pipeline reads (the watcher's configuration extends them). */
export interface PipelineConfig {
  /** Which socket source scans (USE_PROC). */
  backend: Backend;
  /** Only these ports (WATCH_PORTS); unset: all. */
  ports?: PortSet;
  /** A port back within this many ms after vanishing emits no close (CLOSE_GRACE_MS). */
  graceMs: number;
  /** State kept across restarts (SNAPSHOT_PATH). */
  snapshotPath: string;
  /** Log the holders of each new or changed port (VERBOSE_LSOF). */
  verbose: boolean;
  /** Watch every network namespace on the host (WATCH_SCOPE=host / --all-netns). */
  allNetns: boolean;
  /** How long shutdown waits for delivery before leaving events in the spool. */
  shutdownTimeoutMs: number;
  /**
   * Where containers' names, images and compose labels are read (CONTAINER_STATE_DIRS; default: Docker's,
   * containerd's and containers/storage's state directories, here and under /host). Unset: the defaults.
   */
  containerStateDirs?: string[];
  /** A file holding the host's name, read when pid 1's is hidden (HOST_NAME_FILE); null: none. */
  hostNameFile?: string | null;
  /** Report runtime-owned sockets (Docker's embedded DNS) as the container's ports (REPORT_RUNTIME_SOCKETS). */
  reportRuntimeSockets?: boolean;
}

/** What the pipeline needs from its engine. */
export interface PipelineOptions {
  config: PipelineConfig;
  sink: EventSink;
  env: EnvSource;
  /** The engine's source value on its events ("polling", "ebpf", "fallback"). */
  source: Source;
  /** The source value of the closes sent at shutdown. */
  shutdownSource: Source;
}

/** One namespace's sockets (after the WATCH_PORTS filter) and their holders, from {@link Pipeline.scan}. */
export interface ScanResult {
  netns: number;
  sockets: ListeningSocket[];
  owners: Map<number, number[]>;
}

/** Counters for logs, benchmarks and metrics. */
export interface PipelineStats {
  scans: number;
  events: number;
  lastScanMs: number;
  scanErrors: number;
}

/** The engine-neutral stages; see the module's description. */
export class Pipeline {
  readonly tracker: PortTracker;
  /** Who holds each socket (kept exact from scan to scan). */
  readonly resolver = new PidResolver();
  /** Containers' names, images and compose labels from the runtimes' state (CONTAINER_STATE_DIRS), per id. */
  readonly containers: ContainerMetaLookup;
  /** Hides runtime-owned sockets (unless REPORT_RUNTIME_SOCKETS=1), for every engine. */
  readonly runtimeSockets: RuntimeSocketFilter;
  readonly scopes: Scopes;
  /** Changes to events: identity, process, clock, id. */
  readonly enricher: Enricher;
  readonly reporter: Reporter;
  readonly stats: PipelineStats = { scans: 0, events: 0, lastScanMs: 0, scanErrors: 0 };
  /** Called after every scan with how long it took (ms): the metrics' scan histogram. */
  onScanned?: (ms: number) => void;
  /** Called with the inode of each namespace that is gone (event-driven engines drop their state for it). */
  onNamespaceGone?: (netns: number) => void;
  readonly #self: Identity;
  readonly #hostWarning: string | undefined;

  constructor(readonly options: PipelineOptions) {
    const { config, env } = options;
    this.tracker = new PortTracker(config.graceMs);
    this.containers = new ContainerMetaLookup(config.containerStateDirs ?? DEFAULT_CONTAINER_STATE_DIRS);
    this.runtimeSockets = new RuntimeSocketFilter({ report: config.reportRuntimeSockets ?? false });
    const host = detectHostInfo(env);
    this.#hostWarning = hostFallbackWarning(
      host,
      config.hostNameFile === undefined ? DEFAULT_HOST_NAME_FILE : config.hostNameFile,
    );
    this.#self = identityOfPid(env, host.host, "self", "/proc", this.containers);
    this.scopes = new Scopes({
      allNetns: config.allNetns,
      backend: config.backend,
      env,
      containers: this.containers,
      self: this.#self,
    });
    const scope = config.allNetns ? "host-wide" : `netns:${netnsInode()}`;
    this.enricher = new Enricher({
      identityOf: (netns) => this.scopes.identityOf(netns),
      processInfo: (pid) => this.resolver.processInfo(pid),
      containerMeta: (id) => this.containers.get(id),
    });
    this.reporter = new Reporter({
      sink: options.sink,
      tracker: this.tracker,
      enricher: this.enricher,
      snapshotPath: config.snapshotPath,
      owner: `${this.#self.host}/${this.#self.container_id ?? "-"}/${scope}`,
      verbose: config.verbose,
      withWhere: config.allNetns,
    });
  }

  /** The identity of this watcher (host, container). */
  get identity(): Identity {
    return this.#self;
  }

  /** Which backend scans, for the start-up log. */
  get backend(): string {
    return this.scopes.backend;
  }

  /** Read the snapshot and set up the scopes; namespaces in the snapshot that are gone have their ports closed. */
  async start(): Promise<void> {
    if (this.#hostWarning !== undefined) log.warn("{warning}", { warning: this.#hostWarning });
    await this.reporter.restore();
    this.scopes.open();
    const live = new Set(this.scopes.inodes());
    const gone = new Set(this.tracker.open().map((p) => p.netns).filter((n) => !live.has(n)));
    for (const netns of gone) await this.#report(this.tracker.dropNamespace(netns), this.#self);
  }

  /**
   * Scan every watched namespace: its sockets (after the WATCH_PORTS filter) and their holders. With
   * `refreshNamespaces` (host-wide), the namespace list is refreshed first and the ports of gone ones close.
   */
  async scan(refreshNamespaces = true): Promise<ScanResult[]> {
    const started = performance.now();
    if (refreshNamespaces) {
      for (const gone of this.scopes.refresh()) {
        this.onNamespaceGone?.(gone.netns);
        await this.#report(this.tracker.dropNamespace(gone.netns), gone.identity);
      }
    }
    const ports = this.options.config.ports;
    const out: ScanResult[] = [];
    for (const scope of this.scopes.all()) {
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
      out.push({ netns: scope.netns, sockets, owners: this.resolver.resolve(sockets.map((s) => s.inode)) });
    }
    this.stats.scans++;
    this.stats.lastScanMs = performance.now() - started;
    this.onScanned?.(this.stats.lastScanMs);
    return out;
  }

  /** The ports a scan shows open (runtime-owned sockets left out), grouped per (proto, port). */
  portsOf(scan: ScanResult): PortObservation[] {
    const pidsOf = (inode: number) => scan.owners.get(inode);
    return observePorts(this.runtimeSockets.keep(scan.netns, scan.sockets, pidsOf), pidsOf);
  }

  /** Diff a complete look at one namespace against what is tracked, and report what changed. */
  observe(netns: number, observations: readonly PortObservation[]): Promise<PortEvent[]> {
    return this.report(this.tracker.observe(netns, observations, Date.now()), netns);
  }

  /** Report the closes whose grace has run out. */
  tick(): Promise<PortEvent[]> {
    return this.#report(this.tracker.tick(Date.now()), this.#self);
  }

  /**
   * Report changes to a namespace's ports (its identity), as this engine's source. With `wait: false`, resolves
   * once the events are in the snapshot's outbox and handed to the sink, not delivered.
   */
  report(changes: PortChange[], netns?: number, opts?: { wait?: boolean }): Promise<PortEvent[]> {
    const identity = (netns === undefined ? undefined : this.scopes.identityOf(netns)) ?? this.#self;
    return this.#report(changes, identity, this.options.source, opts);
  }

  async #report(
    changes: PortChange[],
    identity: Identity,
    source = this.options.source,
    opts?: { wait?: boolean },
  ): Promise<PortEvent[]> {
    const events = await this.reporter.report(changes, identity, source, opts);
    this.stats.events = this.reporter.events;
    return events;
  }

  /**
   * Graceful shutdown: a close for every tracked port (the shutdown source), delivered within the configured
   * time or left in the spool; then the sources are closed.
   */
  async shutdown(): Promise<{ closes: number; delivered: boolean }> {
    const events = await this.#report(this.tracker.closeAll(), this.#self, this.options.shutdownSource);
    const delivered = await this.options.sink.flush(this.options.config.shutdownTimeoutMs);
    await this.reporter.settle();
    this.scopes.close();
    return { closes: events.length, delivered };
  }
}
