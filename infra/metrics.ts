/**
 * A tiny Prometheus registry: counters, gauges and histograms with labels, written in the text exposition
 * format 0.0.4 (`# HELP`, `# TYPE`, one sample per line, label values escaped), and {@link serveMetrics}, the
 * `GET /metrics` endpoint the watchers open when METRICS_PORT is set.
 *
 * Conventions are enforced where they are cheap to check: names are `[a-zA-Z_:][a-zA-Z0-9_:]*`, counters end in
 * `_total`, label names are valid and not reserved (`__*`, and `le` outside histograms), a label set must name
 * exactly the declared labels. Values that live elsewhere (an engine's counters, a file's size) are read at
 * scrape time through a `collect` callback instead of being copied on every change.
 * @module
 */

/** Label values of one series, by label name. */
export type Labels = Record<string, string | number>;

/** One series of a metric read at scrape time. */
export interface Sample {
  labels: Labels;
  value: number;
}

/** What every metric is declared with. */
export interface MetricOptions {
  /** Full name, e.g. `portwatch_listener_events_accepted_total` (snake_case, unit and `_total` in it). */
  name: string;
  /** One line saying what is measured. */
  help: string;
  /** Label names, in the order they are written. */
  labelNames?: readonly string[];
}

/** A counter or gauge whose value is read at scrape time: a number (no labels) or a sample per series. */
export interface CollectedOptions extends MetricOptions {
  collect?: () => number | Iterable<Sample>;
}

/** A histogram's declaration. */
export interface HistogramOptions extends MetricOptions {
  /** Upper bounds, ascending (`+Inf` is added); default {@link DEFAULT_BUCKETS}. */
  buckets?: readonly number[];
}

/** The Content-Type of the text exposition format. */
export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** The Prometheus clients' default buckets, in seconds. */
export const DEFAULT_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A label value in a sample line: backslash, double quote and line feed escaped. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** HELP text: backslash and line feed escaped. */
export function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** A sample value as Go's ParseFloat reads it: `+Inf`, `-Inf`, `NaN`, else the shortest decimal. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

function labelText(names: readonly string[], values: readonly string[], extra?: [string, string]): string {
  const parts = names.map((n, i) => `${n}="${escapeLabelValue(values[i])}"`);
  if (extra) parts.push(`${extra[0]}="${escapeLabelValue(extra[1])}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
}

/** What the three kinds share: name, help, labels, and the series by label values. */
abstract class Metric<V> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  protected series = new Map<string, { values: string[]; state: V }>();

  constructor(readonly type: "counter" | "gauge" | "histogram", options: MetricOptions) {
    if (!METRIC_NAME.test(options.name)) {
      throw new Error(`invalid metric name ${JSON.stringify(options.name)}`);
    }
    this.name = options.name;
    this.help = options.help;
    this.labelNames = [...(options.labelNames ?? [])];
    for (const l of this.labelNames) {
      if (!LABEL_NAME.test(l) || l.startsWith("__") || (l === "le" && type === "histogram")) {
        throw new Error(`${this.name}: invalid label name ${JSON.stringify(l)}`);
      }
    }
    if (new Set(this.labelNames).size !== this.labelNames.length) {
      throw new Error(`${this.name}: a label name is repeated`);
    }
  }

  /** The label values of `labels` in declared order; throws unless exactly the declared labels are given. */
  protected values(labels: Labels | undefined): string[] {
    const given = labels ? Object.keys(labels) : [];
    if (given.length !== this.labelNames.length || !given.every((k) => this.labelNames.includes(k))) {
      throw new Error(
        `${this.name}: labels {${given.join(",")}} given, {${this.labelNames.join(",")}} declared`,
      );
    }
    return this.labelNames.map((n) => String(labels![n]));
  }

  protected child(labels: Labels | undefined, init: () => V): V {
    const values = this.values(labels);
    const key = values.join("\u0000");
    let s = this.series.get(key);
    if (!s) {
      s = { values, state: init() };
      this.series.set(key, s);
    }
    return s.state;
  }

  /** The sample lines, without HELP/TYPE; empty when there is no series. */
  abstract samples(): string[];
}

/** A value that only goes up (or a reading of one kept elsewhere, through `collect`). */
class Scalar extends Metric<{ v: number }> {
  #collect?: () => number | Iterable<Sample>;

  constructor(type: "counter" | "gauge", options: CollectedOptions) {
    super(type, options);
    this.#collect = options.collect;
    // A metric without labels exists from the start (at 0), so rate() and absent() behave.
    if (this.labelNames.length === 0 && !this.#collect) this.child(undefined, () => ({ v: 0 }));
  }

  protected add(labels: Labels | undefined, n: number): void {
    this.child(labels, () => ({ v: 0 })).v += n;
  }

  protected put(labels: Labels | undefined, n: number): void {
    this.child(labels, () => ({ v: 0 })).v = n;
  }

  /** The current value of a series (0 if never touched). */
  get(labels?: Labels): number {
    return this.series.get(this.values(labels).join("\u0000"))?.state.v ?? 0;
  }

  samples(): string[] {
    if (this.#collect) {
      const got = this.#collect();
      const list: Sample[] = typeof got === "number" ? [{ labels: {}, value: got }] : [...got];
      return list.map((s) =>
        `${this.name}${labelText(this.labelNames, this.values(s.labels))} ${formatValue(s.value)}`
      );
    }
    return [...this.series.values()].map(({ values, state }) =>
      `${this.name}${labelText(this.labelNames, values)} ${formatValue(state.v)}`
    );
  }
}

/** A monotonically increasing count; its name ends in `_total`. */
export class Counter extends Scalar {
  constructor(options: CollectedOptions) {
    if (!options.name.endsWith("_total")) throw new Error(`counter ${options.name} must end in _total`);
    super("counter", options);
  }

  /** Add `n` (default 1, never negative) to the series `labels`. */
  inc(labels?: Labels, n = 1): void {
    if (!(n >= 0)) throw new Error(`${this.name}: a counter cannot decrease (inc by ${n})`);
    this.add(labels, n);
  }

  /** Make the series `labels` exist at 0, so it is exposed before its first increment. */
  init(labels?: Labels): void {
    this.add(labels, 0);
  }
}

/** A value that goes up and down. */
export class Gauge extends Scalar {
  constructor(options: CollectedOptions) {
    super("gauge", options);
  }

  /** Set the series `labels` to `value`. */
  set(labels: Labels | undefined, value: number): void {
    this.put(labels, value);
  }

  /** Add `n` (default 1; negative subtracts). */
  inc(labels?: Labels, n = 1): void {
    this.add(labels, n);
  }

  /** Subtract `n` (default 1). */
  dec(labels?: Labels, n = 1): void {
    this.add(labels, -n);
  }
}

interface HistogramState {
  counts: number[];
  sum: number;
  count: number;
}

/** Observations counted into cumulative buckets, with their sum and count. */
export class Histogram extends Metric<HistogramState> {
  readonly buckets: readonly number[];

  constructor(options: HistogramOptions) {
    super("histogram", options);
    const b = [...(options.buckets ?? DEFAULT_BUCKETS)].filter((x) => x !== Infinity);
    if (b.length === 0 || b.some((x, i) => !Number.isFinite(x) || (i > 0 && x <= b[i - 1]))) {
      throw new Error(`${this.name}: buckets must be finite and strictly ascending`);
    }
    this.buckets = b;
    if (this.labelNames.length === 0) this.child(undefined, () => this.#empty());
  }

  #empty(): HistogramState {
    return { counts: new Array(this.buckets.length).fill(0), sum: 0, count: 0 };
  }

  /** Record `value` (e.g. a duration in seconds) in the series `labels`. */
  observe(labels: Labels | undefined, value: number): void {
    const s = this.child(labels, () => this.#empty());
    // Each observation goes in its own (smallest) bucket; buckets are made cumulative when written.
    const i = this.buckets.findIndex((b) => value <= b);
    if (i >= 0) s.counts[i]++;
    s.sum += value;
    s.count++;
  }

  /** Start timing; the returned function observes the seconds elapsed (and returns them). */
  startTimer(labels?: Labels): () => number {
    const t0 = performance.now();
    return () => {
      const seconds = (performance.now() - t0) / 1000;
      this.observe(labels, seconds);
      return seconds;
    };
  }

  /** Count and sum of a series, for tests and logs. */
  get(labels?: Labels): { count: number; sum: number } {
    const s = this.series.get(this.values(labels).join("\u0000"))?.state;
    return { count: s?.count ?? 0, sum: s?.sum ?? 0 };
  }

  samples(): string[] {
    const out: string[] = [];
    for (const { values, state } of this.series.values()) {
      let cumulative = 0;
      for (let i = 0; i < this.buckets.length; i++) {
        cumulative += state.counts[i];
        const le: [string, string] = ["le", formatValue(this.buckets[i])];
        out.push(`${this.name}_bucket${labelText(this.labelNames, values, le)} ${cumulative}`);
      }
      out.push(`${this.name}_bucket${labelText(this.labelNames, values, ["le", "+Inf"])} ${state.count}`);
      out.push(`${this.name}_sum${labelText(this.labelNames, values)} ${formatValue(state.sum)}`);
      out.push(`${this.name}_count${labelText(this.labelNames, values)} ${state.count}`);
    }
    return out;
  }
}

/** A set of metrics exposed together, in the order they were registered. */
export class Registry {
  #metrics: Metric<unknown>[] = [];
  #names = new Set<string>();

  #add<M extends Metric<unknown>>(m: M): M {
    const names = m.type === "histogram"
      ? [m.name, `${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`]
      : [
        m.name,
      ];
    if (names.some((n) => this.#names.has(n))) throw new Error(`metric ${m.name} is already registered`);
    for (const n of names) this.#names.add(n);
    this.#metrics.push(m);
    return m;
  }

  /** Register a counter (name ending in `_total`). */
  counter(options: CollectedOptions): Counter {
    return this.#add(new Counter(options));
  }

  /** Register a gauge. */
  gauge(options: CollectedOptions): Gauge {
    return this.#add(new Gauge(options));
  }

  /** Register a histogram. */
  histogram(options: HistogramOptions): Histogram {
    return this.#add(new Histogram(options));
  }

  /** Every metric with at least one series, in the text exposition format 0.0.4. */
  expose(): string {
    const lines: string[] = [];
    for (const m of this.#metrics) {
      const samples = m.samples();
      if (samples.length === 0) continue;
      lines.push(`# HELP ${m.name} ${escapeHelp(m.help)}`, `# TYPE ${m.name} ${m.type}`, ...samples);
    }
    return lines.length ? lines.join("\n") + "\n" : "";
  }

  /** The `/metrics` answer: the exposition, or a 500 naming what failed to collect. */
  response(method = "GET"): Response {
    let body: string;
    try {
      body = this.expose();
    } catch (e) {
      return new Response(`collecting metrics failed: ${(e as Error).message}\n`, { status: 500 });
    }
    return new Response(method === "HEAD" ? null : body, { headers: { "content-type": CONTENT_TYPE } });
  }
}

/** A running metrics endpoint. */
export interface MetricsServer {
  /** Its base URL, e.g. `http://127.0.0.1:9464`; metrics are at `${url}/metrics`. */
  url: string;
  server: Deno.HttpServer<Deno.NetAddr>;
  /** Stop accepting scrapes. */
  shutdown(): Promise<void>;
}

/**
 * Serve `registry` at `GET /metrics` on `host:port` (0: any free port); any other path is a 404. Throws what
 * Deno.serve throws when it cannot bind (e.g. `Deno.errors.AddrInUse`).
 */
export function serveMetrics(port: number, host: string, registry: Registry): MetricsServer {
  const server = Deno.serve({ hostname: host, port, onListen: () => {} }, (req) => {
    const { pathname } = new URL(req.url);
    if (pathname !== "/metrics") {
      return new Response("not found: metrics are at /metrics\n", { status: 404 });
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response("method not allowed: GET /metrics\n", {
        status: 405,
        headers: { allow: "GET, HEAD" },
      });
    }
    return registry.response(req.method);
  });
  const h = server.addr.hostname;
  return {
    url: `http://${h.includes(":") ? `[${h}]` : h}:${server.addr.port}`,
    server,
    shutdown: () => server.shutdown(),
  };
}
