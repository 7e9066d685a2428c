/** The fleet simulator program: `deno task fleet`; see fleet/config.ts for the settings. */
import { ConfigError } from "../infra/env.ts";
import { loadFleetConfig, USAGE } from "./config.ts";
import { runFleet, type RunResult } from "./run.ts";
import { eventsOk, portsOk } from "./verify.ts";

const ms = (v: number | undefined) => (v === undefined ? "n/a" : `${Math.round(v)} ms`);

/** A human summary of a run: what ran, what was measured, PASS or FAIL with the reasons. */
export function summary(r: RunResult): string {
  const d = r.delivery;
  const cpu = (s: number) => `${((s / r.seconds) * 100).toFixed(0)}%`;
  const lines = [
    `fleet ${r.prefix}: ${r.store} store, ${r.urls.length} listener(s) ${r.urls.join(", ")}`,
    `  traffic   ${d.generated} events in ${r.seconds.toFixed(1)} s (${
      Math.round(d.generated / r.seconds)
    }/s); ` +
    `acknowledged ${d.delivered} (+${d.duplicates} duplicate acks), ${d.retries} retried POSTs, ` +
    `${d.spooled} spooled, ${d.spoolDepth} left in spools`,
    `  balancer  ${
      r.traffic.map((t, i) => `replica ${i}: ${t.requests} requests, ${t.failures} failed`).join("; ")
    }` +
    `; ${r.failovers} failovers`,
    `  lag       send → on a replica's stream: p50 ${ms(r.lag.p50)}, p99 ${ms(r.lag.p99)}, max ${
      ms(r.lag.max)
    } ` +
    `(${r.lag.samples} samples of the probe hosts, ${r.lag.pending} unseen)`,
    `  cpu       simulator ${cpu(r.cpu.simulator)}, ${
      r.cpu.replicas.map((c, i) => `replica ${i} ${cpu(c)}`).join(", ")
    }` +
    (r.cpu.postgres !== undefined ? `, postgres ${cpu(r.cpu.postgres)}` : "") + " (of one core)",
    ...r.chaos.map((c) => `  chaos     ${c}`),
    `  (a) store ${
      eventsOk(r.events) ? "ok" : "FAIL"
    }: ${r.events.stored} of ${r.events.expected} events stored ` +
    `(read from ${r.eventsFrom}); ${r.events.missing} missing, ${r.events.duplicated} duplicated, ` +
    `${r.events.unexpected} unexpected`,
    ...r.ports.map((p) =>
      `  (b) ports ${
        portsOk(p) ? "ok" : "FAIL"
      } on ${p.url}: ${p.listed} listed, ${p.expected} open in the truth; ` +
      `${p.missing} missing, ${p.extra} extra, ${p.wrong} wrong`
    ),
    r.ok ? "PASS" : `FAIL\n${r.problems.map((p) => `  - ${p}`).join("\n")}`,
  ];
  return lines.join("\n");
}

if (import.meta.main) {
  let config;
  try {
    config = loadFleetConfig(Deno.args, Deno.env);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    console.error(`portwatch fleet: ${e.message}`);
    Deno.exit(2);
  }
  if (config === "help") {
    console.log(USAGE);
    Deno.exit(0);
  }
  const { json, ...options } = config;
  const result = await runFleet(options, (line) => console.error(`fleet: ${line}`));
  console.log(json ? JSON.stringify(result, null, 2) : summary(result));
  Deno.exit(result.ok ? 0 : 1);
}
