/**
 * The fleet benchmark (`deno task bench fleet`): 1,000 simulated watchers (fleet/) against (1) the file store
 * with 1 listener, (2) PostgreSQL with 1 replica, (3) PostgreSQL with 2 replicas, in one run. For each, the
 * offered rate is stepped up until it is no longer sustained (fleet/ladder.ts): events/s acknowledged, lag
 * from a watcher's send to a stream client (p50/p99), and the CPU of simulator, listeners and PostgreSQL;
 * then every event is checked stored exactly once and /ports against the truth. Last, `GET /ports` for one
 * container over a PostgreSQL store holding 10 million events (loaded by SQL, fleet/pg_load.ts).
 * @module
 */
import { Cluster, type StoreKind } from "../fleet/cluster.ts";
import { Fleet, hostName } from "../fleet/fleet.ts";
import { LagProbe, percentile } from "../fleet/lag.ts";
import { climb, type Step } from "../fleet/ladder.ts";
import { checkEvents, checkPorts, eventsOk, idsFromLogs, portsOk } from "../fleet/verify.ts";
import { idsFromPostgres } from "../fleet/pg_ids.ts";
import { loadedContainerId, loadHistory } from "../fleet/pg_load.ts";
import { Replica } from "../fleet/replica.ts";
import { postgresSkipReason, startPostgres } from "../listener/pg/testing_postgres.ts";
import { fmtInt, fmtMs, fmtRatio, markdownTable } from "./table.ts";

/** One store setup. */
interface Setup {
  name: string;
  store: StoreKind;
  replicas: number;
}

const SETUPS: (Setup & { key: string })[] = [
  { key: "file", name: "file store, 1 listener", store: "file", replicas: 1 },
  { key: "pg1", name: "PostgreSQL, 1 replica", store: "postgres", replicas: 1 },
  { key: "pg2", name: "PostgreSQL, 2 replicas", store: "postgres", replicas: 2 },
];

/** Settings, from the environment. */
interface FleetBenchOptions {
  hosts: number;
  rates: number[];
  settleS: number;
  measureS: number;
  /** Events stored before the /ports query. */
  storedEvents: number;
  /** PostgreSQL with fsync on (as in production; the file store fsyncs too). */
  durable: boolean;
  /** The setups to run (FLEET_BENCH_SETUPS, keys of {@link SETUPS}; default all). */
  setups: Setup[];
}

function options(env = Deno.env): FleetBenchOptions {
  const quick = env.get("BENCH_QUICK") === "1";
  const rates = (env.get("FLEET_BENCH_RATES") ?? "2500,5000,7500,10000,15000,20000,25000,30000,40000,50000")
    .split(",").map(Number);
  if (rates.some((r) => !(r > 0))) throw new Error(`FLEET_BENCH_RATES: want events/s > 0, comma-separated`);
  const keys = (env.get("FLEET_BENCH_SETUPS") ?? SETUPS.map((s) => s.key).join(",")).split(",")
    .map((k) => k.trim());
  const unknown = keys.filter((k) => !SETUPS.some((s) => s.key === k));
  if (unknown.length > 0 || keys.length === 0) {
    throw new Error(
      `FLEET_BENCH_SETUPS: unknown setup ${JSON.stringify(unknown.join(","))}; want a comma-separated ` +
        `subset of ${SETUPS.map((s) => s.key).join(",")}`,
    );
  }
  return {
    hosts: Number(env.get("FLEET_BENCH_HOSTS") ?? 1000),
    rates,
    settleS: 3,
    measureS: Number(env.get("BENCH_SECONDS") ?? (quick ? 3 : 5)),
    storedEvents: Number(env.get("FLEET_BENCH_EVENTS") ?? (quick ? 1_000_000 : 10_000_000)),
    durable: env.get("FLEET_BENCH_DURABLE") !== "0",
    setups: SETUPS.filter((s) => keys.includes(s.key)),
  };
}

const say = (line: string) => console.error(`bench fleet: ${line}`);

/** What one setup gave. */
interface SetupResult {
  setup: Setup;
  steps: Step[];
  /** The highest sustained step, if any. */
  best?: Step;
  check: string;
}

async function benchSetup(setup: Setup, o: FleetBenchOptions): Promise<SetupResult> {
  const dir = await Deno.makeTempDir({ prefix: "portwatch-fleet-bench-" });
  const prefix = `bench-${crypto.randomUUID().slice(0, 6)}`;
  let cluster: Cluster | undefined, fleet: Fleet | undefined, probe: LagProbe | undefined;
  try {
    say(`${setup.name}: starting`);
    cluster = await Cluster.start({ ...setup, dir, durablePostgres: o.durable });
    probe = new LagProbe(cluster.urls, [0, 1, 2, 3].map((i) => hostName(prefix, i)));
    fleet = await Fleet.open({
      hosts: o.hosts,
      rate: 0,
      replicas: cluster.urls,
      prefix,
      seed: 1,
      spoolDir: `${dir}/spool`,
      probe,
    });
    await probe.start();
    fleet.start();
    const steps = await climb(
      fleet,
      cluster,
      probe,
      { ...o, maxP99Ms: 1000 },
      (l) => say(`${setup.name}: ${l}`),
    );
    fleet.stop();
    say(`${setup.name}: delivering the backlog (${fleet.delivery().spoolDepth} spooled), then checking`);
    const flushed = await fleet.flush(180_000);
    const stored = setup.store === "file"
      ? await idsFromLogs(cluster.logPaths, prefix + "-")
      : await idsFromPostgres(cluster.pg!, "portwatch", prefix + "-");
    const ev = checkEvents(fleet.ids, stored);
    const ports = await checkPorts(cluster.urls[0], fleet.sims, prefix + "-");
    const check = !flushed
      ? `not flushed (${fleet.delivery().spoolDepth} left in spools, ${fleet.stuckSends} sends unresolved)`
      : eventsOk(ev) && portsOk(ports)
      ? `ok: ${fmtInt(ev.expected)} events once, ${fmtInt(ports.expected)} ports`
      : `FAIL: ${ev.missing} missing, ${ev.duplicated} dup, ${
        ports.missing + ports.extra + ports.wrong
      } ports off`;
    const sustained = steps.filter((s) => s.sustained);
    return { setup, steps, best: sustained.at(-1), check };
  } finally {
    await probe?.stop();
    await fleet?.close();
    await cluster?.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** p50/p99 of `n` sequential GETs of `url` after 10 warm-up requests; also the last body's `count`. */
async function timeGets(url: string, n: number): Promise<{ p50?: number; p99?: number; count: number }> {
  let count = 0;
  const times: number[] = [];
  for (let i = 0; i < n + 10; i++) {
    const t = performance.now();
    const res = await fetch(url);
    const body = await res.json() as { count: number };
    if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${JSON.stringify(body)}`);
    if (i >= 10) times.push(performance.now() - t);
    count = body.count;
  }
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p99: percentile(times, 99), count };
}

async function benchPorts(o: FleetBenchOptions): Promise<string> {
  const pg = await startPostgres();
  const dir = await Deno.makeTempDir({ prefix: "portwatch-fleet-bench-" });
  const replica = new Replica({
    logPath: `${dir}/l.log`,
    env: { STORE_URL: await pg.createDatabase("portwatch") },
  });
  try {
    await replica.start(); // creates the schema
    await replica.stop();
    const t0 = Date.now();
    say(`loading ${fmtInt(o.storedEvents)} events into PostgreSQL`);
    await loadHistory(pg, "portwatch", o.storedEvents, (n) => say(`  ${fmtInt(n)} events loaded`));
    const loadS = (Date.now() - t0) / 1000;
    await replica.start();
    const [events, states] = (await pg.psql(
      "SELECT (SELECT count(*) FROM events) || ' ' || (SELECT count(*) FROM port_state)",
      "portwatch",
    )).trim().split(" ").map(Number);
    const cid = await loadedContainerId(pg, "portwatch", 42, 1);
    const rows: string[][] = [];
    const row = (what: string, r: { p50?: number; p99?: number; count: number }, target?: number) =>
      rows.push([
        what,
        fmtInt(r.count),
        fmtMs(r.p50),
        fmtMs(r.p99),
        target ? `< ${target} ms` : "",
        target ? (r.p99 !== undefined && r.p99 < target ? "met" : "MISSED") : "",
      ]);
    row("GET /ports?container=<id>", await timeGets(`${replica.url}/ports?container=${cid}`, 200), 20);
    row(
      "GET /ports?container=<id prefix 12>",
      await timeGets(`${replica.url}/ports?container=${cid.slice(0, 12)}`, 200),
    );
    row("GET /ports?host=<host>", await timeGets(`${replica.url}/ports?host=load-h00042`, 200));
    row(
      "GET /events?container=<id>&limit=100",
      await timeGets(`${replica.url}/events?container=${cid}&limit=100`, 200),
    );
    return [
      `### /ports over ${fmtInt(events)} stored events (PostgreSQL, 1 replica)`,
      "",
      `${fmtInt(events)} events and ${fmtInt(states)} port_state rows (${
        fmtInt(states - 20_000)
      } closed-port ` +
      `tombstones, 20,000 open) loaded by SQL in ${loadS.toFixed(0)} s; 200 sequential requests after 10 ` +
      `warm-up, client-side time.`,
      "",
      markdownTable(["query", "listed", "p50", "p99", "target", ""], rows, [
        "left",
        "right",
        "right",
        "right",
      ]),
    ].join("\n");
  } finally {
    await replica.stop();
    await pg.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Run the fleet benchmark and return its report (Markdown). */
export async function runFleetBench(): Promise<string> {
  const o = options();
  const skip = postgresSkipReason();
  const setups = skip ? o.setups.filter((s) => s.store === "file") : o.setups;
  const results: SetupResult[] = [];
  for (const s of setups) results.push(await benchSetup(s, o));
  const file = results.find((r) => r.setup.store === "file")?.best;
  const stepRows = results.flatMap((r) =>
    r.steps.map((s) => [
      r.setup.name,
      fmtInt(s.offered),
      fmtInt(s.generated),
      fmtInt(s.acked),
      fmtMs(s.p50),
      fmtMs(s.p99),
      fmtInt(s.retries),
      `${s.cpu.simulator.toFixed(0)}%`,
      `${s.cpu.replicas.toFixed(0)}%`,
      s.cpu.postgres !== undefined ? `${s.cpu.postgres.toFixed(0)}%` : "",
      `${s.cpu.other.toFixed(0)}%`,
      s.sustained ? "yes" : `no: ${s.why}`,
    ])
  );
  const summaryRows = results.map((r) => [
    r.setup.name,
    fmtInt(r.best?.acked),
    fmtMs(r.best?.p50),
    fmtMs(r.best?.p99),
    fmtRatio(r.best?.acked, file?.acked),
    fmtRatio(r.best?.p99, file?.p99),
    r.check,
  ]);
  const pg2 = results.find((r) => r.setup.replicas === 2)?.best;
  const parts = [
    "## Fleet: 1,000 simulated watchers, file store vs PostgreSQL replicas",
    "",
    `${Deno.build.target}, ${navigator.hardwareConcurrency} cores shared by the simulator, the listeners and ` +
    `PostgreSQL (${o.durable ? "fsync on" : "fsync off"}). ${
      fmtInt(o.hosts)
    } watchers, each a real HttpSink ` +
    `reporting once a second; lag = watcher send → event on a replica's stream (4 probe hosts); steps of ` +
    `${o.measureS} s after ${o.settleS} s settling; sustained = ≥ 95% generated and acknowledged, backlog not growing, ` +
    `p99 lag < 1 s. CPU in % of one core; "other" is what the rest of the machine used meanwhile (other ` +
    `programs running at the same time make a step unrepresentative).`,
    "",
    markdownTable(
      [
        "setup",
        "max sustained events/s",
        "lag p50",
        "lag p99",
        "events/s vs file",
        "p99 vs file",
        "end check",
      ],
      summaryRows,
      ["left", "right", "right", "right", "right", "right", "left"],
    ),
    "",
    `Target: PostgreSQL with 2 replicas ≥ 20,000 events/s with p99 lag < 1 s: ${
      skip
        ? `not run (${skip})`
        : pg2 && pg2.acked >= 20_000
        ? "met"
        : `MISSED (${fmtInt(pg2?.acked ?? 0)}/s)`
    }.`,
    "",
    "### Steps",
    "",
    markdownTable(
      [
        "setup",
        "offered/s",
        "generated/s",
        "acked/s",
        "lag p50",
        "lag p99",
        "retries",
        "cpu sim",
        "cpu listeners",
        "cpu pg",
        "cpu other",
        "sustained",
      ],
      stepRows,
      ["left", ...Array<"right">(10).fill("right"), "left"],
    ),
    "",
  ];
  if (o.storedEvents === 0) parts.push("/ports over stored events: not run (FLEET_BENCH_EVENTS=0)");
  else if (skip) parts.push(`/ports over 10 M events: not run (${skip})`);
  else parts.push(await benchPorts(o));
  return parts.join("\n");
}
