/**
 * Listener settings from flags and environment variables (flags win). Every bad value stops start-up with an
 * error naming the setting, the value and what is accepted.
 * @module
 */
import { parseStoreUrl } from "./pg/url.ts";
import {
  ConfigError,
  type EnvSource,
  firstSet,
  parseBool,
  parseBytes,
  parseFlags,
  parseInteger,
  parsePort,
} from "../infra/env.ts";

/** Everything the listener needs to start. */
export interface ListenerConfig {
  host: string;
  port: number;
  logPath: string;
  fsync: boolean;
  bodyLimit: number;
  maxBytes: number;
  keep: number;
  token?: string;
  dedupeWindow: number;
  recentSize: number;
  logLevel: "debug" | "info" | "warning" | "error";
  /** PostgreSQL URL (STORE_URL): the PostgreSQL store instead of the JSON-lines file. */
  storeUrl?: string;
  /** The port policy file (POLICY_PATH): opens and changes get its verdict at ingest. */
  policyPath?: string;
  /** Days of events the PostgreSQL store keeps (RETENTION_DAYS); 0 keeps everything. */
  retentionDays: number;
}

/** Help text for `--help`. */
export const USAGE = `portwatch listener: stores port events (JSON-lines log, or PostgreSQL) and serves them.

Usage: deno task listen [options]

Options (each also an environment variable; flags win):
  --host HOST            LISTENER_HOST        address to bind (default 127.0.0.1; compose uses 0.0.0.0)
  --port PORT            LISTENER_PORT        port (default 8080; 0 picks a free one)
  --log-path PATH        LOG_PATH             JSON-lines log (default ./logs/portwatcher.log)
  --fsync 0|1            LISTENER_FSYNC       fsync before each acknowledgement, group-committed (default 1)
  --body-limit SIZE      LISTENER_BODY_LIMIT  largest request body (default 1MiB)
  --max-bytes SIZE       LOG_MAX_BYTES        rotate the log past this size; 0 never (default 64MiB)
  --keep N               LOG_KEEP             rotated files kept (default 5)
  --store-url URL        STORE_URL            store events in PostgreSQL instead of the log file, e.g.
                                              postgres://user:password@db:5432/portwatch; replicas of the
                                              listener may share one database (default: the log file)
  --retention-days N     RETENTION_DAYS       PostgreSQL store: drop events older than N days, a daily
                                              partition at a time; 0 keeps everything (default 0)
  --policy PATH          POLICY_PATH          port policy (YAML): every open and change is stored with its
                                              verdict; read again on change and SIGHUP; check it with
                                              deno task policy check FILE
                         LISTENER_TOKEN       bearer token required by every route but /healthz and /schema
                         DEDUPE_WINDOW        recent ids remembered to drop retried events (default 200000)
                         RECENT_EVENTS        recent events kept in memory for queries and resume (default 10000)
                         LOG_LEVEL            debug, info, warning or error (default info)
  -h, --help             this text
`;

const LEVELS = ["debug", "info", "warning", "error"] as const;

/** Parse `args` (Deno.args) and `env` into a config; throws ConfigError on any bad value. */
export function loadConfig(args: string[], env: EnvSource): ListenerConfig | "help" {
  const flags = parseFlags(
    args,
    {
      host: { type: "string" },
      port: { type: "string" },
      "log-path": { type: "string" },
      fsync: { type: "string" },
      "body-limit": { type: "string" },
      "max-bytes": { type: "string" },
      keep: { type: "string" },
      "store-url": { type: "string" },
      "retention-days": { type: "string" },
      policy: { type: "string" },
    },
    env,
    USAGE,
  );
  if (flags === "help") return "help";
  const { pick } = flags;
  const host = pick("host", "LISTENER_HOST");
  const port = pick("port", "LISTENER_PORT");
  const logPath = pick("log-path", "LOG_PATH");
  const fsync = pick("fsync", "LISTENER_FSYNC");
  const body = pick("body-limit", "LISTENER_BODY_LIMIT");
  const max = pick("max-bytes", "LOG_MAX_BYTES");
  const keep = pick("keep", "LOG_KEEP");
  const storeUrl = pick("store-url", "STORE_URL");
  const retention = pick("retention-days", "RETENTION_DAYS");
  const policy = pick("policy", "POLICY_PATH");
  const dedupe = firstSet(env, "DEDUPE_WINDOW");
  const recent = firstSet(env, "RECENT_EVENTS");
  const level = firstSet(env, "LOG_LEVEL");
  if (level && !(LEVELS as readonly string[]).includes(level.value)) {
    throw new ConfigError(level.name, level.value, LEVELS.join(", "));
  }
  return {
    host: host?.value ?? "127.0.0.1",
    port: port ? parsePort(port.name, port.value, true) : 8080,
    logPath: logPath?.value ?? "./logs/portwatcher.log",
    fsync: fsync ? parseBool(fsync.name, fsync.value) : true,
    bodyLimit: body ? parseBytes(body.name, body.value, 1024) : 1024 * 1024,
    maxBytes: max ? parseBytes(max.name, max.value) : 64 * 1024 * 1024,
    keep: keep ? parseInteger(keep.name, keep.value, 1, 1000) : 5,
    token: env.get("LISTENER_TOKEN") || undefined,
    dedupeWindow: dedupe ? parseInteger(dedupe.name, dedupe.value, 0, 10_000_000) : 200_000,
    recentSize: recent ? parseInteger(recent.name, recent.value, 0, 1_000_000) : 10_000,
    logLevel: (level?.value as ListenerConfig["logLevel"]) ?? "info",
    storeUrl: storeUrl ? parseStoreUrl(storeUrl.name, storeUrl.value) : undefined,
    retentionDays: retention ? parseInteger(retention.name, retention.value, 0, 36_500) : 0,
    policyPath: policy?.value || undefined,
  };
}
