/** Helpers for the fleet's tests: small runs, and why a PostgreSQL run cannot happen here. */
import { postgresSkipReason } from "../listener/pg/testing_postgres.ts";
import type { RunOptions } from "./run.ts";

/** A small, quick run: 50 hosts for 4 s at 1,000 events/s, against one file listener. */
export function smallRun(over: Partial<RunOptions> = {}): RunOptions {
  return {
    hosts: 50,
    durationS: 4,
    rate: 1000,
    tickMs: 500,
    store: "file",
    replicas: 1,
    balance: "host",
    seed: 1,
    replicaDownS: 1,
    probes: 2,
    flushS: 30,
    ...over,
  };
}

/** Why the PostgreSQL fleet tests cannot run: no server binaries or root, or no PostgreSQL store yet. */
export function pgFleetSkipReason(): string | undefined {
  const reason = postgresSkipReason();
  if (reason) return reason;
  const main = Deno.readTextFileSync(new URL("../listener/main.ts", import.meta.url));
  if (!main.includes("STORE_URL")) return "the listener has no PostgreSQL store yet (STORE_URL)";
  return undefined;
}
