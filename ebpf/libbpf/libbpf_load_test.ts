/**
 * The native engine (EBPF_ENGINE=libbpf) under load, as users run it (`deno run ebpf/main.ts` in a namespace of
 * its own): 10,000 binds a second for 10 s reported without a loss, and a consumer stopped while its ring
 * overflows: the loss is counted, a reconciliation runs at once and the engine ends up reporting exactly the
 * ports that are open. Needs root, network namespaces, python3, curl, ss and what the engine needs (libbpf.so.1,
 * BTF); skips and says why otherwise.
 */
import assert from "node:assert/strict";
import { NetNs, run, skipIf } from "../../testing/netns.ts";
import { endReporter, type Reporter, startReporter } from "../../testing/process.ts";
import { WatcherProc } from "../../watcher/testing/watcher_proc.ts";
import type { PortEvent } from "../../events/schema.ts";
import { waitUntil } from "../../infra/wait.ts";
import { LOADGEN_PY } from "../../bench/bind_load.ts";
import { denoPidOf, libbpfSkipReason, processState } from "./testing/libbpf.ts";
import { ebpfMetrics } from "../testing/engine_steps.ts";

const EBPF_MAIN = new URL("../main.ts", import.meta.url).pathname;

/** The engine's metrics port inside the test's namespace (the other eBPF tests use 19091 and 19093). */
const METRICS_PORT = 19094;

/** Counts of one port's events, and its state as the events tell it. */
interface PortTally {
  opens: number;
  closes: number;
  /** Open as of the last event (an open or a change; a close ends it). */
  open: boolean;
  /** An open that came while it was open, or a close while it was closed. */
  outOfTurn: number;
}

/**
 * The events of a WatcherProc tallied by `proto/port`, read incrementally (the load makes 200,000 events: each
 * is looked at once, not at every poll).
 */
class Tally {
  readonly ports = new Map<string, PortTally>();
  opens = 0;
  closes = 0;
  #next = 0;

  constructor(readonly w: WatcherProc, readonly inRange: (e: PortEvent) => boolean) {}

  /** Take in the events that arrived since the last call. */
  update(): this {
    const events = this.w.events;
    for (; this.#next < events.length; this.#next++) {
      const e = events[this.#next];
      if (!this.inRange(e)) continue;
      const key = `${e.proto}/${e.port}`;
      let t = this.ports.get(key);
      if (!t) this.ports.set(key, t = { opens: 0, closes: 0, open: false, outOfTurn: 0 });
      if (e.event === "open") {
        if (t.open) t.outOfTurn++;
        t.opens++;
        this.opens++;
        t.open = true;
      } else if (e.event === "close") {
        if (!t.open) t.outOfTurn++;
        t.closes++;
        this.closes++;
        t.open = false;
      }
    }
    return this;
  }

  /** The ports open as the events tell it, sorted ("tcp/30001", ...). */
  openPorts(): string[] {
    return [...this.update().ports].filter(([, t]) => t.open).map(([k]) => k).sort();
  }
}

/** Start the engine in `ns`, watching `watchPorts`, and wait for its start line. */
async function startEngine(ns: NetNs, dir: string, watchPorts: string, env: Record<string, string> = {}) {
  const w = WatcherProc.start(
    {
      EBPF_ENGINE: "libbpf",
      EBPF_ONLY: "1",
      // No periodic reconciliation during the test: what is seen is seen from the events, or from the
      // reconciliation a loss makes.
      EBPF_RECONCILE: "600",
      WATCH_PORTS: watchPorts,
      METRICS_PORT: String(METRICS_PORT),
      SNAPSHOT_PATH: `${dir}/snapshot`,
      LOG_LEVEL: "info",
      ...env,
    },
    ns,
    [],
    EBPF_MAIN,
  );
  try {
    await w.waitLog(/watching this network namespace with libbpf events/, 60_000);
  } catch (e) {
    await w.stop("SIGKILL").catch(() => {});
    throw e;
  }
  return w;
}

const LOAD_RATE = 10_000;
const LOAD_SECONDS = 10;
const LOAD_BASE = 30_000;
/** Ports BASE..BASE+SPAN-1 in turn: each gets RATE*SECONDS/SPAN binds (even ones UDP, odd ones TCP). */
const LOAD_SPAN = 2_000;

Deno.test({
  name: "libbpf engine: 10,000 binds/s for 10 s, every one reported once open and once closed, nothing lost",
  ignore: skipIf(libbpfSkipReason(), "libbpf engine load"),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "portwatch-libbpf-load-" });
    // The load generator runs from a file: a port's events carry its owner's command line, which with -c would
    // be the whole program, in each of 200,000 events.
    const script = `${dir}/bind_load.py`;
    await Deno.writeTextFile(script, LOADGEN_PY);
    const ns = await NetNs.create();
    let w: WatcherProc | undefined;
    try {
      w = await startEngine(ns, dir, `${LOAD_BASE}-${LOAD_BASE + LOAD_SPAN - 1}`);
      const inLoad = (e: PortEvent) => e.port >= LOAD_BASE && e.port < LOAD_BASE + LOAD_SPAN;
      const tally = new Tally(w, inLoad);
      const out = await run(
        ns.wrap([
          "python3",
          script,
          String(LOAD_RATE),
          String(LOAD_SECONDS),
          String(LOAD_BASE),
          String(LOAD_SPAN),
        ]),
        { timeoutMs: LOAD_SECONDS * 1000 + 60_000 },
      );
      const load = JSON.parse(out.stdout.trim().split("\n").at(-1)!) as {
        count: number;
        seconds: number;
        late: number;
      };
      const total = LOAD_RATE * LOAD_SECONDS;
      assert.equal(load.count, total);
      // The rate was held: the binds took 10 s (a generator falling behind would test a lower rate).
      assert.ok(load.seconds < LOAD_SECONDS * 1.05, `the load took ${load.seconds.toFixed(2)} s`);
      const started = Date.now();
      await waitUntil(
        () =>
          `every load bind reported open and closed (${total} each): opens ${tally.opens}, closes ${tally.closes}` +
          `\nstderr: ${w!.stderr.join("\n")}`,
        () => tally.update().opens >= total && tally.closes >= total,
        90_000,
        100,
      );
      const lagMs = Date.now() - started;
      assert.equal(tally.opens, total);
      assert.equal(tally.closes, total);
      const each = total / LOAD_SPAN;
      for (let port = LOAD_BASE; port < LOAD_BASE + LOAD_SPAN; port++) {
        const key = `${port % 2 === 0 ? "udp" : "tcp"}/${port}`;
        assert.deepEqual(
          tally.ports.get(key),
          { opens: each, closes: each, open: false, outOfTurn: 0 },
          `${key}: ${each} opens and closes, in turn`,
        );
      }
      assert.equal(tally.ports.size, LOAD_SPAN, "no other (port, proto)");
      const m = await ebpfMetrics(ns, METRICS_PORT);
      assert.equal(m.lost, 0, "portwatch_ebpf_lost_events_total");
      assert.ok(
        m.events >= 2 * total,
        `portwatch_ebpf_events_total ${m.events}: a record per bind and per close`,
      );
      assert.ok(!w.stderr.some((l) => /the ring was full/.test(l)), w.stderr.join("\n"));
      console.log(
        `load: ${load.count} binds in ${load.seconds.toFixed(2)} s (${load.late} late); ` +
          `last event ${lagMs} ms after the load ended; ${m.events} events read, ${m.lost} lost`,
      );
    } finally {
      const status: Deno.CommandStatus | undefined = w ? await w.stop("SIGTERM") : undefined;
      await ns.delete();
      await Deno.remove(dir, { recursive: true });
      if (status) assert.equal(status.code, 0, w!.stderr.join("\n"));
    }
  },
});

/** Ports of the stopped-consumer test: opened before the churn and closed after it. */
const EARLY = 31_000;
/** Opened and closed at once, enough of them to overflow a 16 KiB ring many times over. */
const CHURN = 31_100;
const CHURN_SPAN = 500;
const CHURN_BINDS = 4_000;
/** Opened after the churn and held to the end: the ports really open. */
const HELD = 32_000;
const HELD_COUNT = 20;
const EARLY_COUNT = 10;

Deno.test({
  name:
    "libbpf engine: its ring overflows while it is stopped: the loss is counted, reconciled at once, and the open ports are exactly those open",
  ignore: skipIf(libbpfSkipReason(), "libbpf engine lost events"),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "portwatch-libbpf-lost-" });
    const ns = await NetNs.create();
    let w: WatcherProc | undefined;
    let stopped: number | undefined;
    let churn: Reporter<{ held: number[] }> | undefined;
    try {
      // 16 KiB: ~227 records of 72 bytes.
      w = await startEngine(ns, dir, `${EARLY}-${HELD + HELD_COUNT - 1}`, { EBPF_RING_KB: "16" });
      const inTest = (e: PortEvent) => e.port >= EARLY && e.port < HELD + HELD_COUNT;
      const tally = new Tally(w, inTest);
      const before = await ebpfMetrics(ns, METRICS_PORT);
      assert.equal(before.lost, 0);
      const deno = denoPidOf(w.child);
      Deno.kill(deno, "SIGSTOP");
      stopped = deno;
      await waitUntil("the engine stopped", () => processState(deno) === "T", 5_000);
      // While the engine is stopped: listeners opened (their records fit), a churn that fills the ring, then
      // listeners held to the end (their opens lost) and the first ones closed (their closes lost).
      churn = await startReporter<{ held: number[] }>(
        ns.wrap([
          "python3",
          "-c",
          `import json, socket, sys
def listen(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", port)); s.listen()
    return s
early = [listen(${EARLY} + i) for i in range(${EARLY_COUNT})]
for i in range(${CHURN_BINDS}):
    port = ${CHURN} + i % ${CHURN_SPAN}
    if i % 2 == 0:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", port))
    else:
        s = listen(port)
    s.close()
held = [listen(${HELD} + i) for i in range(${HELD_COUNT})]
for s in early: s.close()
print(json.dumps({"held": [s.getsockname()[1] for s in held]}), flush=True)
sys.stdin.read()`,
        ]),
        "churn",
        30_000,
      );
      const expected = Array.from({ length: HELD_COUNT }, (_, i) => `tcp/${HELD + i}`).sort();
      assert.deepEqual(churn.report.held.map((p) => `tcp/${p}`).sort(), expected);
      // What really is open in the range, by ss: the held listeners alone.
      const ss = await run(ns.wrap(["ss", "-Htlnu"]));
      const reallyOpen = ss.stdout.trim().split("\n").map((l) => l.trim().split(/\s+/))
        .map(([proto, , , , local]) => `${proto}/${Number(local.slice(local.lastIndexOf(":") + 1))}`)
        .filter((k) => {
          const port = Number(k.split("/")[1]);
          return port >= EARLY && port < HELD + HELD_COUNT;
        }).sort();
      assert.deepEqual(reallyOpen, expected, ss.stdout);
      Deno.kill(deno, "SIGCONT");
      stopped = undefined;

      const after = await waitUntil(
        "the loss counted and a reconciliation after it",
        async () => {
          const m = await ebpfMetrics(ns, METRICS_PORT);
          return m.lost > 0 && m.reconciliations > before.reconciliations && m;
        },
        20_000,
        100,
      );
      // Records of ~2 * 4,000 churn binds and of the listeners: far more than the ring holds.
      assert.ok(after.lost > 1_000, `lost ${after.lost}`);
      await waitUntil(
        () => `the open ports, as reported, to be the held ones: ${JSON.stringify(tally.openPorts())}`,
        () => JSON.stringify(tally.openPorts()) === JSON.stringify(expected),
        20_000,
        50,
      );
      for (let i = 0; i < EARLY_COUNT; i++) {
        const t = tally.ports.get(`tcp/${EARLY + i}`);
        assert.deepEqual([t?.opens, t?.closes], [1, 1], `early ${EARLY + i} opened and closed once`);
      }
      for (const [key, t] of tally.ports) assert.equal(t.outOfTurn, 0, `${key}: opens and closes in turn`);
      assert.ok(w.stderr.some((l) => /the ring was full: \d+ record\(s\) lost/.test(l)), w.stderr.join("\n"));

      // The engine is whole again: the held listeners' closes come from the events.
      await endReporter(churn.child, churn.stdin, churn.stderr, "churn");
      churn = undefined;
      await waitUntil(
        () => `every held port closed: open ${JSON.stringify(tally.openPorts())}`,
        () => tally.openPorts().length === 0,
        10_000,
        50,
      );
      const last = await ebpfMetrics(ns, METRICS_PORT);
      assert.equal(last.lost, after.lost, "no loss since");
      assert.equal(last.drift, 0, "the loss's drift is not counted as drift");
      console.log(
        `ring of 16 KiB, engine stopped: ${last.lost} records lost, ${last.reconciliations} reconciliation(s), ` +
          `${last.events} events read`,
      );
    } finally {
      if (stopped !== undefined) Deno.kill(stopped, "SIGCONT");
      if (churn) await endReporter(churn.child, churn.stdin, churn.stderr, "churn");
      const status: Deno.CommandStatus | undefined = w ? await w.stop("SIGTERM") : undefined;
      await ns.delete();
      await Deno.remove(dir, { recursive: true });
      if (status) assert.equal(status.code, 0, w!.stderr.join("\n"));
    }
  },
});
