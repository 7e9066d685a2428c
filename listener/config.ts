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
  /** Alertmanager's base URL (ALERTMANAGER_URL), without a trailing slash; `/api/v2/alerts` is appended. */
  alertmanagerUrl?: string;
  /** The alerts webhook (ALERT_WEBHOOK_URL). */
  alertWebhookUrl?: string;
  /** File store: where the alert queues are kept (ALERT_QUEUE_DIR; default `<dir of LOG_PATH>/alerts`). */
  alertQueueDir?: string;
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
                                              verdict (rules, learned baselines, a default); read again on
                                              change and SIGHUP; check it with deno task policy check FILE
                         ALERTMANAGER_URL     with a policy: send unexpected open ports to Alertmanager
                                              (its base URL, e.g. http://127.0.0.1:9093; API v2)
                         ALERT_WEBHOOK_URL    with a policy: POST each alert's firing and resolve as JSON
                         ALERT_QUEUE_DIR      file store: the alerts' durable queues (default: alerts/ beside
                                              the log)
                         LISTENER_TOKEN       bearer token required by every route but /healthz, /schema and
                                              the page's files; the page signs in once (POST /signin) for
                                              a session cookie that serves reads
                         DEDUPE_WINDOW        recent ids remembered to drop retried events (default 200000)
                         RECENT_EVENTS        recent events kept in memory for queries and resume (default 10000)
                         LOG_LEVEL            debug, info, warning or error (default info)
  -h, --help             this text
`;

const LEVELS = ["debug", "info", "warning", "error"] as const;

/** A setting's value with the password of a URL in it hidden (error messages are logged). */
function hidePassword(value: string): string {
  return value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*:)[^@/]*@/i, "$1***@");
}

/** An http(s) URL of an alert target; `base`: Alertmanager's, to which /api/v2/alerts is appended. */
function parseAlertUrl(name: string, value: string, base: boolean): string {
  const accepted = base
    ? "Alertmanager's base URL, http:// or https://, e.g. http://127.0.0.1:9093 (the path /api/v2/alerts is " +
      "appended), without a query"
    : "an http:// or https:// URL, e.g. https://hooks.example.com/portwatch";
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch { /* below */ }
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:") || url.hash !== "") {
    throw new ConfigError(name, hidePassword(value), accepted);
  }
  if (base && (url.search !== "" || /\/api\/v[12]\b/.test(url.pathname))) {
    throw new ConfigError(name, hidePassword(value), `${accepted}; give the base URL, not the API's path`);
  }
  return base ? url.href.replace(/\/+$/, "") : url.href;
}

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
  const alertmanager = firstSet(env, "ALERTMANAGER_URL");
  const webhook = firstSet(env, "ALERT_WEBHOOK_URL");
  const queueDir = firstSet(env, "ALERT_QUEUE_DIR");
  for (const s of [alertmanager, webhook]) {
    if (s && !policy?.value) {
      throw new ConfigError(
        s.name,
        hidePassword(s.value),
        "only together with POLICY_PATH (--policy): alerts are raised for the open ports the port policy " +
          "judges unexpected, and no policy is set",
      );
    }
  }
  if (queueDir && /[\0\n]/.test(queueDir.value)) {
    throw new ConfigError(queueDir.name, queueDir.value, "a directory path (no NUL or line break)");
  }
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
    alertmanagerUrl: alertmanager ? parseAlertUrl(alertmanager.name, alertmanager.value, true) : undefined,
    alertWebhookUrl: webhook ? parseAlertUrl(webhook.name, webhook.value, false) : undefined,
    alertQueueDir: queueDir?.value,
  };
}
