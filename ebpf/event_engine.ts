/**
 * The event-driven engine: socket events from bpftrace or Tracee update the ledger, and each change goes
 * through the same pipeline as polling's (scopes, diff, report, snapshot, delivery: pipeline/). It starts
 * from a scan, so ports open before it started are known, and a slow reconciliation scan corrects and counts
 * drift (a non-zero drift is a gap in what the probes see, to be reported).
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { EventSink } from "../delivery/sink.ts";
import type { EnvSource } from "../infra/env.ts";
import { Pipeline, type PipelineConfig } from "../pipeline/pipeline.ts";
import { netnsInode } from "../pipeline/scope/identity.ts";
import { SocketLedger } from "./ledger.ts";
import type { PortRef } from "./ledger_index.ts";
import { EndHold } from "./reorder.ts";
import type { SocketEventSource } from "./event_source.ts";
import type { SocketEvent } from "./socket_event.ts";
import type { PortChange } from "../pipeline/tracker.ts";

const log = getLogger(["portwatch", "ebpf"]);

/** How long changes gather before they are reported together, unless the source says otherwise (gatherMs). */
const FLUSH_GATHER_MS = 20;
/** A batch this large leaves at once: in a burst, the first events need not wait for the last. */
const FLUSH_MAX_CHANGES = 500;

/** Counters for logs and metrics. */
export interface EventEngineStats {
  events: number;
  ignored: number;
  reconciles: number;
  drift: number;
  lost: number;
}

/** What the engine needs. */
export interface EventEngineOptions {
  config: PipelineConfig;
  sink: EventSink;
  env: EnvSource;
  source: SocketEventSource;
  /** Interval of the reconciliation scan, ms (default 30 s). */
  reconcileMs?: number;
  /** After a holder exits, when to check which of its sockets are really gone (default 50 ms). */
  exitCheckMs?: number;
}

/** Event-driven engine over any SocketEventSource. */
export class EventEngine {
  readonly pipeline: Pipeline;
  readonly ledger: SocketLedger;
  readonly stats: EventEngineStats = { events: 0, ignored: 0, reconciles: 0, drift: 0, lost: 0 };
  #own = netnsInode();
  #chain: Promise<unknown> = Promise.resolve();
  #timer?: ReturnType<typeof setInterval>;
  #exitCheck?: ReturnType<typeof setTimeout>;
  #stopped = false;
  /** Ending events wait here for older events read after them (a source that reads out of order). */
  #hold: EndHold;

  constructor(readonly options: EventEngineOptions) {
    this.#hold = new EndHold(options.source.reorderMs ?? 0, (e) => this.#apply(e), this.#holdClock);
    this.pipeline = new Pipeline({
      config: options.config,
      sink: options.sink,
      env: options.env,
      source: "ebpf",
      shutdownSource: "shutdown-ebpf",
    });
    this.pipeline.onNamespaceGone = (netns) => this.ledger.dropNamespace(netns);
    // The runtime-owned sockets are hidden by the same filter as polling's (REPORT_RUNTIME_SOCKETS).
    const runtimeSockets = this.pipeline.runtimeSockets;
    this.ledger = new SocketLedger({ hides: (netns, pids) => runtimeSockets.hides(netns, pids) });
  }

  /** Restore the snapshot, seed the ledger from a scan (after the probes are attached), report the diff. */
  async start(): Promise<void> {
    await this.pipeline.start();
    await this.options.source.ready;
    await this.#enqueue(async () => {
      for (const { netns, sockets, owners } of await this.pipeline.scan()) {
        this.ledger.seed(netns, sockets, (inode) => owners.get(inode) ?? []);
        await this.#observe(netns);
      }
      this.#adoptHolders();
    });
  }

  /** The source follows the holders a scan found (they opened their sockets before it could see them). */
  #adoptHolders(): void {
    if (!this.options.source.adopt) return;
    const pids = new Set<number>();
    for (const s of this.ledger.sockets()) for (const pid of s.pids) pids.add(pid);
    this.options.source.adopt(pids);
  }

  /** Serialise work that reports, so events leave in the order they were seen. */
  #enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#chain.then(fn);
    this.#chain = next.catch((e) => log.error("engine step failed: {error}", { error: String(e) }));
    return next;
  }

  #observe(netns: number): Promise<unknown> {
    return this.pipeline.observe(netns, this.ledger.observations(netns));
  }

  #inScope(e: SocketEvent): boolean {
    if (e.netns === undefined) return true; // close/exit/fork: the ledger knows which sockets they end
    if (this.options.config.allNetns) return this.pipeline.scopes.watches(e.netns);
    return e.netns === this.#own;
  }

  /** When the read being handed over began (a source hands over one read's events in one synchronous run). */
  #readAt?: number;
  /**
   * The hold's clock: the start of the current read for all of its events, so that a held end never falls due
   * while the rest of its read (its open, maybe) is still being handed over; a big read can take longer than the
   * reorder window to apply.
   */
  #holdClock = (): number => this.#readAt ?? Date.now();

  /** One event as read: ignored when out of scope, else applied now or, when it ends something, held a moment. */
  #onEvent = (e: SocketEvent): void => {
    if (this.#readAt === undefined) {
      this.#readAt = Date.now();
      queueMicrotask(() => (this.#readAt = undefined));
    }
    this.stats.events++;
    const ports = this.options.config.ports;
    if (!this.#inScope(e) || (e.port !== undefined && ports && !ports.has(e.port) && e.kind !== "unlisten")) {
      this.stats.ignored++;
      return;
    }
    this.#hold.push(e);
  };

  /** Apply one event now (state), report its changes in order (I/O). */
  #apply = (e: SocketEvent): void => {
    if (this.#stopped && this.#shutDown) return;
    const sockets = this.ledger.size;
    this.ledger.apply(e, this.#own);
    // An exit that closed sockets (their last known holder): a scan a moment later checks that none lives on in
    // a holder the events did not show.
    if (e.kind === "exit" && this.ledger.size < sockets) this.#scheduleExitCheck();
    this.#track();
    // A holder closed one of its copies of a socket, or exec'd (its close-on-exec fds went without a close):
    // what it holds now is read from /proc, one process's fds (dup'ed fds are not in the events).
    for (const pid of this.ledger.recheck) {
      this.ledger.holdings(pid, this.pipeline.resolver.socketsOf(pid));
      this.#track();
    }
  };

  /**
   * The ports the ledger's last step touched go to the tracker, synchronously, in event order; the reporting
   * (snapshot, delivery) is batched: all the changes made while the previous report was under way leave
   * together, still in order.
   */
  #track(): void {
    if (this.ledger.touched.length === 0) return;
    const now = Date.now();
    const tracker = this.pipeline.tracker;
    for (const ref of this.ledger.touched) {
      const o = this.ledger.observationOf(ref);
      if (o && tracker.isSteady(ref.netns, ref)) {
        // Still open: at most a change of holders or addresses, decided when the batch leaves, so that a fork
        // whose child exec'd or closed its copy at once (a server starting a subprocess) is no change at all.
        this.#steady.set(`${ref.netns}/${ref.proto}/${ref.port}/${ref.containerId ?? ""}`, ref);
        continue;
      }
      this.#decided(tracker.observePort(ref.netns, ref, o, now));
    }
    if (tracker.graceMs > 0) this.#scheduleTick();
    if (this.#pendingChanges >= FLUSH_MAX_CHANGES) {
      // Full: this batch goes now (behind what is already queued); the next one gathers afresh.
      this.#flush();
    } else if ((this.#pending.length > 0 || this.#steady.size > 0) && !this.#flushQueued) {
      // A few milliseconds of gathering turn a storm of binds into a few batches (one snapshot write and one
      // delivery each) at a cost well below the 50 ms the engine allows itself from bind to listener.
      this.#flushQueued = true;
      const gatherMs = this.options.source.gatherMs ?? FLUSH_GATHER_MS;
      // gatherMs 0: once the events of this read are applied (the source hands them over in one synchronous
      // run, so a microtask comes after the last of them).
      if (gatherMs <= 0) queueMicrotask(() => this.#flushQueued && this.#flush());
      else setTimeout(() => this.#flushQueued && this.#flush(), gatherMs);
    }
  }

  #decided(changes: PortChange[]): void {
    if (changes.length === 0) return;
    this.#pending.push({ netns: changes[0].port.netns, changes });
    this.#pendingChanges += changes.length;
  }

  /** Ports that stayed open whose holders or addresses may have changed, by port: decided at the flush. */
  #steady = new Map<string, PortRef>();
  #pending: { netns: number; changes: PortChange[] }[] = [];
  #tickTimer?: ReturnType<typeof setTimeout>;

  /** With a close grace, report the closes whose grace runs out (at the earliest deadline). */
  #scheduleTick() {
    if (this.#tickTimer !== undefined) return;
    const deadline = this.pipeline.tracker.nextDeadline();
    if (deadline === undefined) return;
    this.#tickTimer = setTimeout(() => {
      this.#tickTimer = undefined;
      const changes = this.pipeline.tracker.tick(Date.now());
      for (const c of changes) this.#pending.push({ netns: c.port.netns, changes: [c] });
      if (this.#pending.length > 0) this.#flush();
      this.#scheduleTick();
    }, Math.max(0, deadline - Date.now()));
  }
  #flushQueued = false;

  /**
   * Report what is decided now, without waiting for the gather time; resolves once it is reported (handed to
   * the sink, in the snapshot's outbox). Held ending events stay held.
   */
  async flushNow(): Promise<void> {
    if (this.#pending.length > 0 || this.#steady.size > 0) this.#flush();
    await this.#chain;
  }

  /**
   * Queue everything pending as one batch. The batch is taken now, not when its turn comes: batches queue in
   * the order their changes were made (a later gather timer must not overtake a full batch queued before it).
   */
  #flush(): void {
    this.#flushQueued = false;
    if (this.#steady.size > 0) {
      const now = Date.now();
      for (const ref of this.#steady.values()) {
        this.#decided(this.pipeline.tracker.observePort(ref.netns, ref, this.ledger.observationOf(ref), now));
      }
      this.#steady.clear();
    }
    const pending = this.#pending;
    this.#pending = [];
    this.#pendingChanges = 0;
    if (pending.length > 0) this.#enqueue(() => this.#report(pending)).catch(() => {}); // logged by #enqueue
  }

  #pendingChanges = 0;
  /** Set once shutdown has applied the last events: the shutdown closes every port after them. */
  #shutDown = false;

  /** Report a batch: one report (one snapshot write, one delivery) per namespace. */
  async #report(pending: { netns: number; changes: PortChange[] }[]): Promise<void> {
    if (pending.length === 0) return;
    const byNs = new Map<number, PortChange[]>();
    for (const p of pending) {
      const list = byNs.get(p.netns);
      if (list) list.push(...p.changes);
      else byNs.set(p.netns, [...p.changes]);
    }
    // Not waiting for delivery: the next batch is decided, saved and handed over while this one is on the wire
    // (the sink sends in order; the snapshot's outbox holds every batch until the sink has it).
    for (const [netns, changes] of byNs) await this.pipeline.report(changes, netns, { wait: false });
  }

  /** A holder exited: a moment later (its fds are released after the exit tracepoint), check with a scan. */
  #scheduleExitCheck() {
    if (this.#exitCheck !== undefined) return;
    this.#exitCheck = setTimeout(() => {
      this.#exitCheck = undefined;
      if (!this.#stopped) this.reconcile(false).catch(() => {});
    }, this.options.exitCheckMs ?? 50);
  }

  /**
   * Scan and make the ledger agree; returns the drift found (logged when non-zero). The scan is taken in turn
   * with the reports; it is compared with the ledger a moment later (the source's settleMs), once the events
   * that raced with it have arrived, and the sockets those events opened or closed are not judged.
   */
  reconcile(countDrift = true): Promise<number> {
    // Events in flight during the scan arrive within settleMs; the ending ones are then held (window + slack).
    const settleMs = (this.options.source.settleMs ?? 50) + this.#hold.maxDelayMs;
    let changed: Set<string> | undefined;
    return this.#enqueue(() => {
      changed = this.ledger.watchChanges();
      return this.pipeline.scan();
    }).then(async (scans) => {
      await new Promise((r) => setTimeout(r, settleMs));
      // While the source drains a backlog, held ends wait past the window (see reorder.ts): so does the
      // comparison, else a socket whose end is still held would be taken for drift.
      const latest = Date.now() + this.#hold.maxHoldMs;
      for (let now = Date.now(); this.#hold.behindUntil > now && now < latest; now = Date.now()) {
        await new Promise((r) => setTimeout(r, this.#hold.behindUntil + this.#hold.slackMs - now));
      }
      return this.#enqueue(async () => {
        this.ledger.unwatchChanges(changed!);
        if (this.#stopped) return 0;
        let drift = 0;
        for (const { netns, sockets, owners } of scans) {
          const before = this.ledger.drift;
          const d = this.ledger.reconcile(netns, sockets, (inode) => owners.get(inode) ?? [], changed);
          if (!countDrift) this.ledger.drift = before;
          else drift += d;
          if (d > 0) await this.#observe(netns);
        }
        this.#adoptHolders();
        this.stats.reconciles++;
        this.stats.drift += drift;
        this.stats.lost = this.options.source.lost;
        if (drift > 0) {
          log.warn(
            "reconciliation found {drift} socket(s) the {engine} events missed (total drift {total}); " +
              "please report this with your kernel version",
            {
              drift,
              engine: this.options.source.name,
              total: this.stats.drift,
            },
          );
        }
        return drift;
      });
    }, (e) => {
      if (changed) this.ledger.unwatchChanges(changed);
      throw e;
    });
  }

  #lostRunning = false;
  #lostAgain = false;

  /**
   * The source lost events (its buffer was full): reconcile now, not at the next interval. One at a time; losses
   * during one bring one more after it. The drift it finds is the loss's, not the probes' blind spots: counted
   * in `lost`, not in drift.
   */
  #lostReconcile(): void {
    this.stats.lost = this.options.source.lost;
    if (this.#stopped) return;
    if (this.#lostRunning) {
      this.#lostAgain = true;
      return;
    }
    this.#lostRunning = true;
    this.reconcile(false).catch(() => {}).finally(() => {
      this.#lostRunning = false;
      if (this.#lostAgain) {
        this.#lostAgain = false;
        this.#lostReconcile();
      }
    });
  }

  /** Process events until stop(); reconciles every reconcileMs. Resolves with why the source ended. */
  async run(): Promise<string> {
    const every = this.options.reconcileMs ?? 30_000;
    this.#timer = setInterval(() => this.reconcile().catch(() => {}), every); // failures are logged
    try {
      return await this.options.source.run(
        this.#onEvent,
        () => this.#hold.holdLonger(Date.now() + this.#hold.holdMs),
        () => this.#lostReconcile(),
      );
    } finally {
      clearInterval(this.#timer);
    }
  }

  /** Stop the source; send a close (shutdown-ebpf) for every tracked port. */
  async shutdown(): Promise<{ closes: number; delivered: boolean }> {
    this.#stopped = true;
    clearInterval(this.#timer);
    clearTimeout(this.#exitCheck);
    clearTimeout(this.#tickTimer);
    await this.options.source.stop();
    this.#hold.flush(); // the source has ended: nothing older can come
    this.#shutDown = true;
    if (this.#pending.length > 0 || this.#steady.size > 0) this.#flush(); // before the shutdown closes
    await this.#chain;
    return await this.pipeline.shutdown();
  }
}
