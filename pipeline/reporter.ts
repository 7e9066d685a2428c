/**
 * Reporting, written once for every engine: tracked changes become wire events (identity, id, process), the
 * seed's human lines are logged, the snapshot is saved, and the events go to the sink.
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { EventSink } from "../delivery/sink.ts";
import type { PortEvent, Source } from "../events/schema.ts";
import type { Identity } from "./scope/identity.ts";
import { loadSnapshot, saveSnapshot } from "./snapshot.ts";
import {
  type PortChange,
  type PortTracker,
  type TrackedPort,
  type TrackerState,
  trackKey,
} from "./tracker.ts";
import { humanLine } from "./event_build.ts";
import type { Enricher } from "./enrich.ts";

const log = getLogger(["portwatch", "watcher"]);
const human = getLogger(["portwatch", "ports"]);
const encoder = new TextEncoder();

/**
 * The seed's human lines of one report as one log record (one write, not one per event: under a storm of
 * changes the per-line writes cost more than everything else a report does). The sink prefixes the record
 * with `[YYYY-MM-DD HH:MM:SS UTC] `; the lines after the first get the same prefix here, so the text is what
 * one record per line would have written.
 */
function logHumanLines(lines: string[]): void {
  if (lines.length === 0) return;
  if (lines.length === 1) return human.info("{line}", { line: lines[0] });
  const prefix = `\n[${new Date().toISOString().replace("T", " ").slice(0, 19)} UTC] `;
  human.info("{line}", { line: lines.join(prefix) });
}

/** What a reporter needs. */
export interface ReporterOptions {
  sink: EventSink;
  tracker: PortTracker;
  /** Turns changes into events (identity, process, clock, id). */
  enricher: Enricher;
  snapshotPath: string;
  /** Whose snapshot it is: host/container/scope. */
  owner: string;
  /** Print the owning processes of each new port (VERBOSE_LSOF). */
  verbose: boolean;
  /** Add the container to the human lines (host-wide mode). */
  withWhere: boolean;
}

/** The key of a tracked port, as the tracker keys it. */
function keyOf(p: TrackedPort): string {
  return trackKey(p.netns, p.proto, p.port, p.container?.id);
}

/**
 * Turns changes into delivered events.
 *
 * The snapshot's state is not the tracker's live state but the state the reported changes led to: an engine may
 * decide changes (the tracker has them) some time before it reports them (the event engine gathers a batch for a
 * few ms, and queues it behind a scan), and a snapshot written in between (by another report, or by the outbox
 * clearing) must not claim those ports: a restart would then believe them reported and never send their events.
 * The state written is therefore always the one of the events written with it (in the outbox) or before it.
 */
export class Reporter {
  events = 0;
  /** The ports open as far as the reported changes say: the snapshot's state. By tracker key. */
  #reported = new Map<string, TrackedPort>();
  constructor(readonly options: ReporterOptions) {}

  /** Restore the tracker from the snapshot, logging what was found. */
  async restore(): Promise<void> {
    const { snapshotPath, owner, tracker } = this.options;
    const loaded = await loadSnapshot(snapshotPath, owner);
    if (loaded.problem) log.warn("snapshot: {problem}", { problem: loaded.problem });
    if (loaded.snapshot) {
      tracker.restore(loaded.snapshot.state);
      this.#reported.clear();
      for (const p of tracker.open()) this.#reported.set(keyOf(p), { ...p }); // a copy: the tracker's changes
      log.info("snapshot: {n} open ports from {at}; changes while the watcher was down will be reported", {
        n: loaded.snapshot.state.ports.length,
        at: loaded.snapshot.savedAt,
      });
      const outbox = (loaded.snapshot.outbox ?? []) as PortEvent[];
      if (outbox.length > 0) {
        log.info("snapshot: sending {n} event(s) decided before the last stop but not delivered then", {
          n: outbox.length,
        });
        await this.#deliver(outbox);
        await this.save();
      }
    }
  }

  async #deliver(events: PortEvent[], lines?: readonly string[]): Promise<void> {
    try {
      await this.options.sink.send(events, lines);
    } catch (e) {
      log.error("could not hand {n} events to delivery: {error}", {
        n: events.length,
        error: (e as Error).message,
      });
    }
  }

  /**
   * Report `changes` (identity from the namespace, else `fallback`), as seen by engine `source`. Resolves once
   * the events are delivered (or spooled); with `wait: false`, once they are in the snapshot's outbox and handed
   * to the sink, so that an engine can decide its next batch while this one is on the wire (the sink keeps
   * their order; the outbox keeps every batch until the sink has it).
   */
  async report(
    changes: PortChange[],
    fallback: Identity,
    source: Source,
    opts: { wait?: boolean } = {},
  ): Promise<PortEvent[]> {
    if (changes.length === 0) return [];
    const { enricher, verbose, withWhere } = this.options;
    const events = enricher.events(changes, fallback, source);
    const lines: string[] = [];
    for (const e of events) {
      lines.push(humanLine(e, withWhere));
      if (verbose) lines.push(...enricher.holderLines(e));
    }
    logHumanLines(lines);
    this.events += events.length;
    // The snapshot's state follows the reported changes: an open or a change sets the port as it was then (a
    // change's port is a copy, not the tracker's object, which later changes will have altered); a close removes
    // it even when the tracker has it again, not yet reported.
    for (const c of changes) {
      if (c.kind === "close") this.#reported.delete(keyOf(c.port));
      else this.#reported.set(keyOf(c.port), c.port);
    }
    // The new state and its events go to the snapshot together (the outbox), then to delivery, then the outbox
    // is cleared: a crash at any point loses no event and, ids being kept, makes none twice.
    const seq = this.#seq++;
    // Each event is serialised once: for the outbox and, handed along, for the HTTP body.
    const json = events.map((e) => JSON.stringify(e));
    this.#unacked.set(seq, encoder.encode(json.join(",")));
    await this.save();
    const delivered = this.#deliver(events, json).then(() => {
      this.#unacked.delete(seq);
      this.#inflight.delete(delivered);
      return this.#delivered();
    });
    this.#inflight.add(delivered);
    if (opts.wait !== false) await delivered;
    return events;
  }

  /** Events handed to the sink and not yet delivered (or spooled) by it, by report, as the outbox's UTF-8 JSON. */
  #unacked = new Map<number, Uint8Array>();
  #seq = 0;
  #inflight = new Set<Promise<void>>();

  /** A report was delivered: clear the outbox now, or under a storm a moment later. */
  async #delivered(): Promise<void> {
    const at = Date.now();
    if (at - this.#lastReport < 250 || this.#unacked.size > 0) this.#clearOutboxSoon();
    else await this.save();
    this.#lastReport = at;
  }

  #clearTimer?: ReturnType<typeof setTimeout>;
  #lastReport = 0;

  /**
   * Under a storm of changes (reports less than 250 ms apart) the delivered outbox is cleared a moment later,
   * not at once: the next report rewrites the snapshot anyway, so this halves the writes. Were the watcher to die
   * before, the restart would send those events again with their ids, which the listener drops as repeats.
   */
  #clearOutboxSoon(): void {
    if (this.#clearTimer !== undefined) return;
    this.#clearTimer = setTimeout(() => {
      this.#clearTimer = undefined;
      this.save();
    }, 250);
  }

  /** Wait for the reports on the wire, then write the snapshot without an outbox (at shutdown). */
  async settle(): Promise<void> {
    while (this.#inflight.size > 0) await Promise.all(this.#inflight);
    clearTimeout(this.#clearTimer);
    this.#clearTimer = undefined;
    await this.save();
  }

  /**
   * The state the reported changes led to (what the snapshot saves): the tracker's state less the changes it
   * decided that were not reported yet.
   */
  reportedState(): TrackerState {
    return { version: 1, ports: [...this.#reported.values()].map((p) => ({ ...p })) };
  }

  /** Each reported port's JSON: the ports in the reported state are copies nobody changes, so by identity. */
  #portJson = new WeakMap<TrackedPort, string>();

  /**
   * {@link Reporter.reportedState} as JSON, written at every report: each port is serialised once, when it
   * enters the state (an open or a change), so a report about a few ports among a thousand open costs a few
   * serialisations, not a thousand.
   */
  reportedStateJson(): string {
    const parts: string[] = [];
    for (const p of this.#reported.values()) {
      let json = this.#portJson.get(p);
      if (json === undefined) this.#portJson.set(p, json = JSON.stringify(p));
      parts.push(json);
    }
    return `{"version":1,"ports":[${parts.join(",")}]}`;
  }

  /**
   * Write the snapshot now, in one atomic write: the state of the reported changes, and as the outbox every
   * event of those not yet delivered.
   */
  async save(): Promise<void> {
    try {
      await saveSnapshot(this.options.snapshotPath, {
        owner: this.options.owner,
        savedAt: new Date().toISOString(),
        stateJson: this.reportedStateJson(),
      }, [...this.#unacked.values()]);
    } catch (e) {
      log.warn("could not write the snapshot {path}: {error}", {
        path: this.options.snapshotPath,
        error: (e as Error).message,
      });
    }
  }
}
