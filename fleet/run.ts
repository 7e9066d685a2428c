/**
 * One fleet run, start to verdict: start (or target) the listeners, run the fleet for a while with the chaos
 * asked for (a replica killed with SIGKILL and started again, PostgreSQL restarted), let every watcher
 * deliver what it holds, then check exactly-once storage and `/ports` against the simulated truth.
 * @module
 */
import { Cluster, type StoreKind } from "./cluster.ts";
import { Fleet, type FleetDelivery, hostName } from "./fleet.ts";
import { LagProbe, type LagStats } from "./lag.ts";
import type { BalanceMode, ReplicaTraffic } from "./balancer.ts";
import { selfCpuSeconds } from "./cpu.ts";
import {
  checkEvents,
  checkPorts,
  type EventCheck,
  eventsOk,
  idsFromApi,
  idsFromLogs,
  type PortsCheck,
  portsOk,
  type StoredIds,
} from "./verify.ts";
import { idsFromPostgres } from "./pg_ids.ts";

/** Everything a run needs; see fleet/config.ts for the flags and defaults. */
export interface RunOptions {
  hosts: number;
  durationS: number;
  /** Events per second over the fleet. */
  rate: number;
  tickMs: number;
  store: StoreKind;
  replicas: number;
  /** Listener URLs to target instead of starting listeners. */
  listeners?: string[];
  /** PostgreSQL URL for the started listeners (none is started then). */
  storeUrl?: string;
  balance: BalanceMode;
  seed: number;
  /** Host name prefix (default: fleet-<random>), so runs against a shared store stay apart. */
  prefix?: string;
  /** Kill replica 0 with SIGKILL this many seconds into the run... */
  killReplicaAtS?: number;
  /** ...and start it again this many seconds later. */
  replicaDownS: number;
  /** Restart PostgreSQL this many seconds into the run. */
  restartPgAtS?: number;
  /** Probe hosts whose events are timed until visible (0: no lag measurement). */
  probes: number;
  /** Time allowed for the watchers to deliver everything at the end, s. */
  flushS: number;
  /** Extra listener environment. */
  listenerEnv?: Record<string, string>;
}

/** The verdict and what was measured. */
export interface RunResult {
  ok: boolean;
  /** Why not ok, one line each. */
  problems: string[];
  prefix: string;
  store: StoreKind;
  urls: string[];
  /** Seconds of generation. */
  seconds: number;
  delivery: FleetDelivery;
  /** Every watcher emptied its spool at the end. */
  flushed: boolean;
  events: EventCheck;
  /** How (a) read the store. */
  eventsFrom: "log" | "postgres" | "api";
  ports: PortsCheck[];
  lag: LagStats;
  chaos: string[];
  traffic: ReplicaTraffic[];
  failovers: number;
  /** CPU seconds during the run: this process (the simulator), each replica, PostgreSQL. */
  cpu: { simulator: number; replicas: number[]; postgres?: number };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Run the fleet; `say` gets progress lines. Every process started is stopped before it returns. */
export async function runFleet(o: RunOptions, say: (line: string) => void = () => {}): Promise<RunResult> {
  const prefix = o.prefix ?? `fleet-${crypto.randomUUID().slice(0, 6)}`;
  const dir = await Deno.makeTempDir({ prefix: "portwatch-fleet-" });
  let cluster: Cluster | undefined;
  let fleet: Fleet | undefined;
  let probe: LagProbe | undefined;
  try {
    if (!o.listeners) {
      say(`starting ${o.replicas} listener replica(s) over the ${o.store} store`);
      cluster = await Cluster.start({
        store: o.store,
        replicas: o.replicas,
        dir,
        storeUrl: o.storeUrl,
        env: o.listenerEnv,
      });
    }
    const urls = o.listeners ?? cluster!.urls;
    const probeHosts = Array.from({ length: Math.min(o.probes, o.hosts) }, (_, i) => hostName(prefix, i));
    probe = new LagProbe(urls, probeHosts);
    say(`opening ${o.hosts} watchers (${prefix}-h*) → ${urls.join(", ")} (${o.balance})`);
    fleet = await Fleet.open({
      hosts: o.hosts,
      rate: o.rate,
      tickMs: o.tickMs,
      replicas: urls,
      balance: o.balance,
      prefix,
      seed: o.seed,
      spoolDir: `${dir}/spool`,
      probe,
    });
    const cpu0 = { sim: selfCpuSeconds(), cluster: await cluster?.cpu() };
    const started = new Date();
    const t0 = Date.now();
    await probe.start();
    fleet.start();
    say(`running ${o.durationS} s at ${o.rate} events/s`);
    const chaos: string[] = [];
    const at = () => `t=${((Date.now() - t0) / 1000).toFixed(1)}s`;
    const tasks: Promise<void>[] = [];
    if (o.killReplicaAtS !== undefined) {
      if (!cluster) throw new Error("--kill-replica-at needs listeners started here, not --listeners");
      const victim = cluster.replicas[0];
      tasks.push((async () => {
        await sleep(o.killReplicaAtS! * 1000);
        await victim.kill9();
        chaos.push(`${at()} replica ${victim.url} killed (SIGKILL)`);
        say(chaos.at(-1)!);
        await sleep(o.replicaDownS * 1000);
        await victim.start();
        chaos.push(`${at()} replica ${victim.url} started again`);
        say(chaos.at(-1)!);
      })());
    }
    if (o.restartPgAtS !== undefined) {
      if (!cluster?.pg) throw new Error("--restart-pg-at needs PostgreSQL started here (--store postgres)");
      tasks.push((async () => {
        await sleep(o.restartPgAtS! * 1000);
        const r0 = Date.now();
        await cluster!.restartPostgres();
        chaos.push(`${at()} PostgreSQL restarted (down ${Date.now() - r0} ms)`);
        say(chaos.at(-1)!);
      })());
    }
    await sleep(o.durationS * 1000);
    fleet.stop();
    const seconds = (Date.now() - t0) / 1000;
    // CPU of the traffic window only (the final delivery and the checks are not part of the load).
    const cpu1 = { sim: selfCpuSeconds(), cluster: await cluster?.cpu() };
    await Promise.all(tasks);
    say(`generated ${fleet.delivery().generated} events; delivering what is left (up to ${o.flushS} s)`);
    const flushed = await fleet.flush(o.flushS * 1000);
    await waitPending(probe, 5_000);
    await probe.stop();
    const lag = probe.stats();
    const delivery = fleet.delivery();

    say("checking the store and /ports");
    let stored: StoredIds;
    let eventsFrom: RunResult["eventsFrom"];
    if (cluster && o.store === "file") {
      stored = await idsFromLogs(cluster.logPaths, prefix + "-");
      eventsFrom = "log";
    } else if (cluster?.pg) {
      stored = await idsFromPostgres(cluster.pg, "portwatch", prefix + "-");
      eventsFrom = "postgres";
    } else {
      stored = await idsFromApi(urls[0], prefix + "-", new Date(started.getTime() - 60_000), new Date());
      eventsFrom = "api";
    }
    const events = checkEvents(fleet.ids, stored);
    const ports: PortsCheck[] = [];
    for (const url of urls) ports.push(await checkPorts(url, fleet.sims, prefix + "-"));

    const problems: string[] = [];
    if (!flushed) {
      problems.push(
        `${delivery.spoolDepth} events still in the watchers' spools, ${fleet.stuckSends} sends unresolved ` +
          `(not acknowledged)`,
      );
    }
    if (delivery.sendErrors > 0) problems.push(`${delivery.sendErrors} events refused by full spools`);
    if (delivery.deadLettered > 0) problems.push(`${delivery.deadLettered} events refused by the listener`);
    if (!eventsOk(events)) {
      problems.push(
        `store: ${events.missing} missing, ${events.duplicated} duplicated, ${events.unexpected} unexpected ` +
          `(${events.examples.slice(0, 3).join("; ")})`,
      );
    }
    for (const p of ports) {
      if (!portsOk(p)) {
        problems.push(
          `/ports on ${p.url}: ${p.missing} missing, ${p.extra} extra, ${p.wrong} wrong of ${p.expected} ` +
            `(${p.examples.slice(0, 3).join("; ")})`,
        );
      }
    }
    return {
      ok: problems.length === 0,
      problems,
      prefix,
      store: o.store,
      urls,
      seconds,
      delivery,
      flushed,
      events,
      eventsFrom,
      ports,
      lag,
      chaos,
      traffic: fleet.balancer.traffic,
      failovers: fleet.balancer.failovers,
      cpu: {
        simulator: cpu1.sim - cpu0.sim,
        replicas: cpu1.cluster?.replicas.map((c, i) => c - (cpu0.cluster?.replicas[i] ?? 0)) ?? [],
        postgres: cpu1.cluster?.postgres !== undefined
          ? cpu1.cluster.postgres - (cpu0.cluster?.postgres ?? 0)
          : undefined,
      },
    };
  } finally {
    await probe?.stop();
    await fleet?.close();
    await cluster?.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Let the probe see the last events (deadline `ms`; what stays unseen is reported as pending). */
async function waitPending(probe: LagProbe, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (probe.stats().pending > 0 && Date.now() < end) await sleep(20);
}
