/**
 * `deno task fleet` settings from flags and environment variables (flags win). A bad value stops with an
 * error naming the setting, the value and what is accepted.
 * @module
 */
import { ConfigError, type EnvSource, parseFlags } from "../infra/env.ts";
import type { RunOptions } from "./run.ts";

/** Help text for `--help`. */
export const USAGE =
  `portwatch fleet: N simulated watchers against listener replicas, then an exactly-once check.

Usage: deno task fleet [options]

Options (each also an environment variable; flags win):
  --hosts N              FLEET_HOSTS          simulated hosts (default 1000)
  --duration S           FLEET_DURATION       seconds of traffic (default 30)
  --rate R               FLEET_RATE           events/s over the fleet (default 2000)
  --tick-ms MS           FLEET_TICK_MS        each watcher's report interval (default 1000)
  --store file|postgres  FLEET_STORE          store of the listeners started here (default postgres)
  --replicas N           FLEET_REPLICAS       replicas to start (default 2; the file store takes 1)
  --store-url URL        STORE_URL            use this PostgreSQL instead of starting one
  --listeners URL,URL    FLEET_LISTENERS      target these listeners; start nothing
  --balance host|round-robin  FLEET_BALANCE   per-host stickiness or per-request (default host)
  --kill-replica-at S    FLEET_KILL_AT        SIGKILL replica 0 at S seconds...
  --replica-down S       FLEET_DOWN           ...and start it again S seconds later (default 2)
  --restart-pg-at S      FLEET_PG_RESTART_AT  restart PostgreSQL at S seconds
  --probes N             FLEET_PROBES         hosts whose events are timed to GET /events (default 8)
  --flush S              FLEET_FLUSH          time to deliver spools at the end (default 60)
  --seed N               FLEET_SEED           randomness (default 1)
  --json                                      print the result as JSON
  -h, --help                                  this text

Exit status: 0 when every acknowledged event is stored exactly once and /ports matches the truth, 1 when
not, 2 on a bad setting.
`;

const num = (name: string, value: string, min: number, max: number, integer = true): number => {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    throw new ConfigError(name, value, `${integer ? "an integer" : "a number"} from ${min} to ${max}`);
  }
  return n;
};

/** Parse `args` and `env` into run options (and `json`), or "help". */
export function loadFleetConfig(args: string[], env: EnvSource): (RunOptions & { json: boolean }) | "help" {
  const names = [
    "hosts",
    "duration",
    "rate",
    "tick-ms",
    "store",
    "replicas",
    "store-url",
    "listeners",
    "balance",
    "kill-replica-at",
    "replica-down",
    "restart-pg-at",
    "probes",
    "flush",
    "seed",
  ];
  const flags = parseFlags(
    args,
    {
      ...Object.fromEntries(names.map((f) => [f, { type: "string" as const }])),
      json: { type: "boolean" },
    },
    env,
    USAGE,
  );
  if (flags === "help") return "help";
  const { values, pick } = flags;
  const get = (flag: string, envName: string, min: number, max: number, dflt: number, integer = true) => {
    const v = pick(flag, envName);
    return v ? num(v.name, v.value, min, max, integer) : dflt;
  };
  const opt = (flag: string, envName: string, max: number) => {
    const v = pick(flag, envName);
    return v ? num(v.name, v.value, 0, max, false) : undefined;
  };
  const store = pick("store", "FLEET_STORE");
  if (store && store.value !== "file" && store.value !== "postgres") {
    throw new ConfigError(store.name, store.value, "file or postgres");
  }
  const kind = (store?.value ?? "postgres") as RunOptions["store"];
  const balance = pick("balance", "FLEET_BALANCE");
  if (balance && balance.value !== "host" && balance.value !== "round-robin") {
    throw new ConfigError(balance.name, balance.value, "host or round-robin");
  }
  const listeners = pick("listeners", "FLEET_LISTENERS");
  const urls = listeners?.value.split(",").map((s) => s.trim()).filter((s) => s !== "");
  for (const u of urls ?? []) {
    if (!/^https?:\/\/[^/]+\/?$/.test(u)) {
      throw new ConfigError(
        listeners!.name,
        listeners!.value,
        "comma-separated base URLs (http://host:port)",
      );
    }
  }
  const storeUrl = pick("store-url", "STORE_URL");
  if (storeUrl && !/^postgres(ql)?:\/\//.test(storeUrl.value)) {
    throw new ConfigError(storeUrl.name, storeUrl.value, "a postgres:// URL");
  }
  const replicas = get("replicas", "FLEET_REPLICAS", 1, 16, kind === "file" ? 1 : 2);
  if (kind === "file" && replicas !== 1 && !urls) {
    throw new ConfigError(
      "--replicas",
      String(replicas),
      "1 with --store file (each file listener is its own store)",
    );
  }
  return {
    hosts: get("hosts", "FLEET_HOSTS", 1, 100_000, 1000),
    durationS: get("duration", "FLEET_DURATION", 0.1, 86_400, 30, false),
    rate: get("rate", "FLEET_RATE", 0, 10_000_000, 2000, false),
    tickMs: get("tick-ms", "FLEET_TICK_MS", 10, 60_000, 1000),
    store: kind,
    replicas,
    listeners: urls && urls.length > 0 ? urls.map((u) => u.replace(/\/+$/, "")) : undefined,
    storeUrl: storeUrl?.value,
    balance: (balance?.value ?? "host") as RunOptions["balance"],
    killReplicaAtS: opt("kill-replica-at", "FLEET_KILL_AT", 86_400),
    replicaDownS: get("replica-down", "FLEET_DOWN", 0, 3600, 2, false),
    restartPgAtS: opt("restart-pg-at", "FLEET_PG_RESTART_AT", 86_400),
    probes: get("probes", "FLEET_PROBES", 0, 1000, 8),
    flushS: get("flush", "FLEET_FLUSH", 1, 3600, 60, false),
    seed: get("seed", "FLEET_SEED", 0, 2 ** 31, 1),
    json: values.json === true,
  };
}
