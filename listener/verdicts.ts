/**
 * The listener's judge: the port policy in force (POLICY_PATH) plus the learned baselines kept in the store.
 * On ingest every open and change gets its verdict (a rule first, then the scope's baseline, then the default)
 * and what a scope learned is made durable before the events are; {@link Verdicts.evaluate} gives an open
 * port's verdict now (GET /ports, /alerts), without learning.
 *
 * With a shared store (PostgreSQL replicas) the baselines are read again every few seconds, and at once before
 * a baseline would raise an alert, so a port another replica learned is not reported as new.
 * @module
 */
import type { PortEvent } from "../events/schema.ts";
import type { Policy, Verdict } from "../policy/match.ts";
import { BASELINE_RULE, type BaselineData, Baselines, type ScopeListing } from "../policy/baseline.ts";
import { baselinesAsPolicy } from "../policy/baseline_export.ts";
import type { Counter, Registry } from "../infra/metrics.ts";
import type { BaselineStore } from "./store_api.ts";
import type { OpenPort } from "./ports_state.ts";
import { applyVerdicts } from "./policy_verdicts.ts";
import type { Validated } from "./validate.ts";

/** How the judge is built. */
export interface VerdictsOptions {
  /** The policy in force now (undefined: none, every port allowed and nothing stored). */
  policy: () => Policy | undefined;
  /** Where baselines are kept. */
  store: BaselineStore;
  /** The clock (ms), for tests. */
  now?: () => number;
  /** Interval of reading a shared store's baselines again, ms (default 5000). */
  refreshMs?: number;
  /** Counts every verdict given on ingest, by verdict and severity. */
  counter?: Counter;
  /** Where a failed background read is reported. */
  onError?: (what: string, e: unknown) => void;
}

const asEvent = (p: OpenPort) => p as unknown as PortEvent;
const ALLOW = { verdict: "allow", severity: "none" };

/** Verdicts on ingest and for open ports; learned baselines kept in memory and in the store. */
export class Verdicts {
  readonly baselines = new Baselines();
  readonly #now: () => number;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(readonly options: VerdictsOptions) {
    this.#now = options.now ?? Date.now;
  }

  /** Read the stored baselines; a shared store is then read again every `refreshMs`. */
  async start(): Promise<void> {
    this.baselines.replace(await this.options.store.load());
    if (this.options.store.shared) {
      this.#timer = setInterval(() => {
        this.options.store.load().then(
          (d) => this.baselines.replace(d),
          (e) => this.options.onError?.("reading the baselines", e),
        );
      }, this.options.refreshMs ?? 5000);
    }
  }

  /** Stop reading the store again. */
  close(): void {
    clearInterval(this.#timer);
  }

  /** The policy in force now. */
  get policy(): Policy | undefined {
    return this.options.policy();
  }

  /** The verdict of `e` now: a rule, else its scope's baseline (learning from it when `learn`), else the default. */
  #judge(policy: Policy, e: PortEvent, now: number, learned?: BaselineData): Verdict {
    const rule = policy.ruleVerdict(e);
    if (rule) return rule;
    if (!policy.source.learn) return policy.defaultVerdict;
    if (!learned) return this.baselines.peek(policy, e, now);
    const j = this.baselines.judge(policy, e, now);
    if (j.learned) {
      learned.scopes.push(...j.learned.scopes);
      learned.ports.push(...j.learned.ports);
    }
    return j.verdict;
  }

  /**
   * Give every open and change in `validated` its verdict (stored with it), learning baselines; resolves once
   * what was learned is durable. Does nothing when no policy is in force.
   */
  async apply(validated: Validated): Promise<void> {
    const policy = this.policy;
    if (!policy) return;
    const now = this.#now();
    if (
      policy.source.learn && this.options.store.shared && this.#wouldAlertOnBaseline(policy, validated, now)
    ) {
      // Another replica may have learned the port: read the baselines before saying it is new.
      this.baselines.merge(await this.options.store.load());
    }
    const learned: BaselineData = { scopes: [], ports: [] };
    // Counted per batch: one labelled increment per kind of verdict, not one per event.
    const tally = new Map<string, number>();
    applyVerdicts((e) => {
      const v = this.#judge(policy, e, now, learned);
      const kind = v.verdict === "allow" ? "allow" : v.severity ?? "warning";
      tally.set(kind, (tally.get(kind) ?? 0) + 1);
      return v;
    }, validated);
    for (const [kind, n] of tally) {
      this.options.counter?.inc(kind === "allow" ? ALLOW : { verdict: "alert", severity: kind }, n);
    }
    if (learned.scopes.length > 0 || learned.ports.length > 0) {
      this.baselines.merge({ scopes: await this.options.store.add(learned), ports: [] });
    }
  }

  #wouldAlertOnBaseline(policy: Policy, validated: Validated, now: number): boolean {
    for (const r of validated.records) {
      if (r.event !== "open" && r.event !== "change") continue;
      const v = this.#judge(policy, r as unknown as PortEvent, now);
      if (v.verdict === "alert" && v.rule === BASELINE_RULE) return true;
    }
    return false;
  }

  /** Learn from ports open now (at start and when a policy is loaded): a scope's open ports are its first. */
  async learnOpen(ports: readonly OpenPort[]): Promise<void> {
    const policy = this.policy;
    if (!policy?.source.learn) return;
    const now = this.#now();
    const learned: BaselineData = { scopes: [], ports: [] };
    for (const p of ports) this.#judge(policy, asEvent(p), now, learned);
    if (learned.scopes.length > 0 || learned.ports.length > 0) {
      this.baselines.merge({ scopes: await this.options.store.add(learned), ports: [] });
    }
  }

  /** The verdict of an open port now, or null when no policy is in force. */
  evaluate(port: OpenPort): Verdict | null {
    const policy = this.policy;
    return policy ? this.#judge(policy, asEvent(port), this.#now()) : null;
  }

  /** `ports` with their verdict now (when a policy is in force; else as stored). */
  judged(ports: OpenPort[]): OpenPort[] {
    if (!this.policy) return ports;
    return ports.map((p) => ({ ...p, policy: this.evaluate(p) }));
  }

  /** Every scope with its ports. */
  list(): ScopeListing[] {
    return this.baselines.list(this.#now());
  }

  /** The finished baselines as policy YAML. */
  export(): string {
    return baselinesAsPolicy(this.list(), {
      severity: this.policy?.source.learn?.severity,
      at: new Date(this.#now()).toISOString(),
    });
  }

  /** Forget scopes (all when `keys` is undefined): in the store, then here. Their learning starts again. */
  async reset(keys?: readonly string[]): Promise<string[]> {
    const gone = await this.options.store.reset(keys);
    this.baselines.reset(keys);
    return gone;
  }
}

/** Register `portwatch_listener_policy_verdicts_total{verdict, severity}` in `registry`. */
export function registerVerdictMetrics(registry: Registry): Counter {
  return registry.counter({
    name: "portwatch_listener_policy_verdicts_total",
    help:
      "Verdicts given on ingest to opens and changes, by verdict (allow, alert) and severity (none for allow).",
    labelNames: ["verdict", "severity"],
  });
}
