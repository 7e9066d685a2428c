/**
 * The firing set: which open ports are unexpected now, one alert each, keyed by the port's key (`portKey` of
 * listener/ui/ports_rule.js). Fed every stored record in store order ({@link AlertState.apply}) and
 * recomputed from the open ports when the policy changes ({@link AlertState.reset}); both return the
 * transitions to send. Pure: replicas that follow the same records compute the same transitions, with the
 * same keys, which is what the PostgreSQL outbox deduplicates on.
 *
 * The rule, per port:
 * - an open or change whose stored verdict is `alert` fires the port's alert; when the port fires already
 *   with other labels (its severity or container name changed), the old alert resolves and the new one
 *   fires; with the same labels nothing is sent (the annotations kept are refreshed);
 * - an open or change whose verdict is `allow` resolves a firing alert; one without a verdict (no policy was
 *   in force when it was stored) leaves the port as it is;
 * - a close resolves it.
 *
 * @example
 * ```ts
 * const state = new AlertState();
 * state.reset(await store.openPorts({}), evaluate, { silent: true }); // at start
 * store.subscribe(({ record }) => send(state.apply(record)));
 * ```
 * @module
 */
import type { Verdict } from "../../policy/match.ts";
import { byPlace, type OpenPort } from "../ports_state.ts";
import { isPortEvent, openPort, portKey, sinceOf } from "../ui/ports_rule.js";
import { type Alert, alertOf, containerLabel, fingerprint } from "./alert.ts";

/** The severities an alert can have, for the gauge. */
export const SEVERITIES = ["info", "warning", "critical"] as const;
/** One of {@link SEVERITIES}. */
export type Severity = (typeof SEVERITIES)[number];

/** One change of an alert's state, to be sent to every target. */
export interface Transition {
  status: "firing" | "resolved";
  alert: Alert;
  /** The port as it was when the transition happened. */
  port: OpenPort;
  /** The stored event that caused it (the port's latest event, for a reset). */
  eventId: string;
  /**
   * The same in every replica that follows the same records: `<event id>|<status>|<label fingerprint>`, with a
   * `reset:<generation>|` prefix for a reset's transitions.
   */
  key: string;
  /** For a resolved alert: when it ended (the close's or change's time, or the reset's), ISO 8601. */
  endsAt?: string;
  /**
   * Resolved, but another open port still fires an alert with the same labels (two network namespaces of one
   * host): Alertmanager, which knows alerts by their labels, must not be told.
   */
  labelsStillFiring?: boolean;
}

/** An alert firing now, as `GET /alerts` lists it. */
export interface FiringAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  generatorURL?: string;
  port: OpenPort;
}

interface Entry {
  port: OpenPort;
  /** The verdict it fires for. */
  verdict: Verdict;
  /** Its label set's identity: severity, host, container, port, proto (alertname is always the same). */
  labels: string;
  /** Built when first needed (a transition, GET /alerts, the refresh); cleared when the port changes. */
  alert?: Alert;
  /** The labels' fingerprint, when first needed. */
  fp?: string;
}

/** The identity of an alert's label set, from the port and verdict (as alertOf labels them). */
function labelsOf(port: OpenPort, verdict: Verdict): string {
  return `${verdict.severity ?? "warning"}\u0000${port.host ?? ""}\u0000${
    containerLabel(port)
  }\u0000${port.port}\u0000${port.proto ?? ""}`;
}

/** The same identity, from an alert's labels. */
function labelsOfAlert(labels: Record<string, string>): string {
  return `${labels.severity}\u0000${labels.host}\u0000${labels.container}\u0000${labels.port}\u0000${labels.proto}`;
}

/** The verdict stored with a record, or null. */
function storedVerdict(v: unknown): Verdict | null {
  return v !== null && typeof v === "object" && "verdict" in v ? v as Verdict : null;
}

/** The firing set of one listener. */
export class AlertState {
  #firing = new Map<string, Entry>();
  /** How many firing ports have each label set (usually 1). */
  #byLabels = new Map<string, number>();
  /**
   * How many firing ports have each port number: a record about another port number with no alert verdict
   * changes nothing, which is found without building its key (most records, under load).
   */
  #byPort = new Map<number, number>();

  /**
   * @param listenerUrl the listener's URL, for the alerts' generatorURL (may be set later)
   * @param options `transitions: false` (no target to send them to) keeps the firing set only: {@link apply}
   *   and {@link reset} then return nothing and build no alert
   */
  constructor(public listenerUrl?: string, readonly options: { transitions?: boolean } = {}) {}

  get #emit(): boolean {
    return this.options.transitions ?? true;
  }

  /** Number of firing alerts (one per port). */
  get size(): number {
    return this.#firing.size;
  }

  #alert(e: Entry): Alert {
    return e.alert ??= alertOf(e.port, e.verdict, this.listenerUrl);
  }

  #fp(e: Entry): string {
    return e.fp ??= fingerprint(this.#alert(e).labels);
  }

  #add(key: string, e: Entry): void {
    this.#firing.set(key, e);
    this.#byLabels.set(e.labels, (this.#byLabels.get(e.labels) ?? 0) + 1);
    this.#byPort.set(e.port.port, (this.#byPort.get(e.port.port) ?? 0) + 1);
  }

  /** Remove `key`'s entry; true when no other firing port has its labels. */
  #remove(key: string, e: Entry): boolean {
    this.#firing.delete(key);
    const ports = (this.#byPort.get(e.port.port) ?? 1) - 1;
    if (ports > 0) this.#byPort.set(e.port.port, ports);
    else this.#byPort.delete(e.port.port);
    const n = (this.#byLabels.get(e.labels) ?? 1) - 1;
    if (n > 0) this.#byLabels.set(e.labels, n);
    else this.#byLabels.delete(e.labels);
    return n <= 0;
  }

  #fire(key: string, e: Entry, eventId: string, prefix: string): Transition[] {
    this.#add(key, e);
    if (!this.#emit) return [];
    return [{
      status: "firing",
      alert: this.#alert(e),
      port: e.port,
      eventId,
      key: `${prefix}${eventId}|firing|${this.#fp(e)}`,
    }];
  }

  #resolve(key: string, e: Entry, eventId: string, endsAt: string, prefix: string): Transition[] {
    const last = this.#remove(key, e);
    if (!this.#emit) return [];
    const alert = this.#alert(e);
    return [{
      status: "resolved",
      alert,
      port: e.port,
      eventId,
      key: `${prefix}${eventId}|resolved|${this.#fp(e)}`,
      endsAt: endsAt < alert.startsAt ? alert.startsAt : endsAt,
      ...(last ? {} : { labelsStillFiring: true }),
    }];
  }

  #entry(port: OpenPort, verdict: Verdict): Entry {
    return { port, verdict, labels: labelsOf(port, verdict) };
  }

  /** Refresh firing entry `old` with `next` of the same labels: the alert is built again when needed. */
  #refresh(old: Entry, next: Entry): void {
    old.port = next.port;
    old.verdict = next.verdict;
    old.alert = undefined;
  }

  /** Apply one stored record (any record: those that are not port events change nothing). */
  apply(record: Record<string, unknown>): Transition[] {
    if (!isPortEvent(record)) return [];
    const verdict = storedVerdict(record.policy);
    if (!this.#byPort.has(record.port) && verdict?.verdict !== "alert") return [];
    const key = portKey(record);
    const old = this.#firing.get(key);
    const id = String(record.id);
    const at = sinceOf(record);
    if (record.event === "close") return old ? this.#resolve(key, old, id, at, "") : [];
    if (verdict === null) {
      if (old) this.#refresh(old, { ...old, port: openPort(record, old.port.since) }); // no verdict: state kept
      return [];
    }
    if (verdict.verdict !== "alert") return old ? this.#resolve(key, old, id, at, "") : [];
    const next = this.#entry(openPort(record, old ? old.port.since : sinceOf(record)), verdict);
    if (old && old.labels === next.labels) {
      this.#refresh(old, next);
      return [];
    }
    const out = old ? this.#resolve(key, old, id, at, "") : [];
    out.push(...this.#fire(key, next, id, ""));
    return out;
  }

  /**
   * Make the firing set the open `ports` whose verdict under `evaluate` (the policy in force now; null: no
   * policy) is an alert, and return the transitions from the previous set: resolves first, then fires. At
   * start (`silent`), the set is taken as it is and nothing is returned: the alerts were sent before, and
   * Alertmanager gets them again with the next refresh. `now` is the time of the resolves (ms).
   */
  reset(
    ports: Iterable<OpenPort>,
    evaluate: (port: OpenPort) => Verdict | null,
    options: { silent?: boolean; now?: number } = {},
  ): Transition[] {
    const next = new Map<string, Entry>();
    for (const p of ports) {
      const v = evaluate(p);
      if (v?.verdict === "alert") next.set(portKey(p), this.#entry(p, v));
    }
    if (options.silent) {
      this.#firing.clear();
      this.#byLabels.clear();
      this.#byPort.clear();
      for (const [k, e] of next) this.#add(k, e);
      return [];
    }
    // Replicas that held the same set before compute the same keys (the generation), so the outbox keeps
    // one row per transition; a set seen again later (a policy changed back) gets the same keys too, and the
    // outbox drops what it still remembers of them (see pg/alert_outbox.ts).
    const prefix = this.#emit ? `reset:${this.generation()}|` : "";
    const now = new Date(options.now ?? Date.now()).toISOString();
    const resolved: Transition[] = [];
    const fired: Transition[] = [];
    for (const [k, old] of [...this.#firing]) {
      const n = next.get(k);
      if (n && n.labels === old.labels) {
        this.#refresh(old, n);
        continue;
      }
      resolved.push(...this.#resolve(k, old, old.port.event_id, now, prefix));
    }
    for (const [k, n] of next) {
      if (this.#firing.has(k)) continue;
      fired.push(...this.#fire(k, n, n.port.event_id, prefix));
    }
    return [...resolved, ...fired];
  }

  /** A digest of the firing set (ports and labels): the generation of a reset's transition keys. */
  generation(): string {
    const parts = [...this.#firing].map(([k, e]) => `${k}\u0001${this.#fp(e)}`).sort();
    return fingerprint({ set: parts.join("\u0002") });
  }

  /** The alerts firing now, sorted like `GET /ports`. */
  firing(): FiringAlert[] {
    return [...this.#firing.values()].sort((a, b) => byPlace(a.port, b.port)).map((e) => {
      const alert = this.#alert(e);
      return {
        labels: alert.labels,
        annotations: alert.annotations,
        startsAt: alert.startsAt,
        ...(alert.generatorURL ? { generatorURL: alert.generatorURL } : {}),
        port: e.port,
      };
    });
  }

  /** The firing alerts, one per label set (what Alertmanager is sent again by the refresh). */
  alerts(): Alert[] {
    const out = new Map<string, Alert>();
    for (const e of this.#firing.values()) out.set(e.labels, this.#alert(e));
    return [...out.values()];
  }

  /** Whether an alert with these labels fires now (for any port). */
  firesLabels(labels: Record<string, string>): boolean {
    return this.#byLabels.has(labelsOfAlert(labels));
  }

  /** Firing ports by severity (every severity present, 0 included). */
  counts(): Record<Severity, number> {
    const out: Record<Severity, number> = { info: 0, warning: 0, critical: 0 };
    for (const e of this.#firing.values()) {
      const s = (e.verdict.severity ?? "warning") as Severity;
      if (s in out) out[s]++;
    }
    return out;
  }
}
