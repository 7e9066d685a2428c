/**
 * Watcher settings, with the seed's names (SCAN_INTERVAL, BURST_SCANS, BURST_DELAY, USE_PROC, WATCH_PORTS /
 * DESIRED_PORTS, CLOSE_GRACE_MS, SNAPSHOT_PATH, VERBOSE_LSOF, ...). Every bad value stops start-up with an error
 * naming the variable, the value and what is accepted.
 * @module
 */
import { parseArgs } from "node:util";
import {
  ConfigError,
  type EnvSource,
  firstSet,
  parseBool,
  parseInteger,
  parsePort,
  parseSecondsMs,
} from "../infra/env.ts";
import { parsePortList } from "../infra/port_list.ts";
import { DEFAULT_SNAPSHOT_PATH } from "../pipeline/snapshot.ts";
import {
  DEFAULT_HOST_NAME_FILE,
  hostNameFileFrom,
  stateDirsFrom,
} from "../pipeline/scope/attribution_settings.ts";
import type { Backend } from "../sources/open_source.ts";
import type { PipelineConfig } from "../pipeline/pipeline.ts";

/** Which socket source to use. */
export type { Backend };

/** Everything the polling watcher needs: the pipeline's settings and the scan loop's. */
export interface WatcherConfig extends PipelineConfig {
  intervalMs: number;
  burstScans: number;
  burstDelayMs: number;
  /** Spread a cycle's scans over SCAN_INTERVAL (default) instead of clustering them as the seed did. */
  burstSpread: boolean;
  logLevel: "debug" | "info" | "warning" | "error";
  /** Serve Prometheus metrics at http://METRICS_HOST:METRICS_PORT/metrics; unset: no endpoint. */
  metricsPort?: number;
  /** Address the metrics endpoint binds (default 127.0.0.1). */
  metricsHost?: string;
}

/** Where the metrics endpoint binds unless METRICS_HOST says otherwise. */
export const DEFAULT_METRICS_HOST = "127.0.0.1";

/** Help text for `--help`. */
export const WATCHER_USAGE = `portwatch watcher: reports TCP/UDP ports that open and close.

Usage: deno task watch [--all-netns] [--once]

Settings (environment):
  SCAN_INTERVAL     seconds between scan cycles, fractions allowed (default 1)
  BURST_SCANS       scans per cycle, BURST_DELAY apart (default 1: one scan per cycle)
  BURST_DELAY       seconds between the scans of a burst, at least (default 0.02)
  BURST_SPREAD      1 (default): spread the BURST_SCANS scans evenly over SCAN_INTERVAL (more short-lived
                    ports seen for the same work); 0: cluster them BURST_DELAY apart, as the seed did
  USE_PROC          unset: fastest native source (netlink sock_diag, else /proc/net);
                    1: /proc/net parser; 0: the ss command, as the seed did
  WATCH_PORTS       only these ports, e.g. "3000,5000-5002 7001" (alias DESIRED_PORTS); default all
  CLOSE_GRACE_MS    a port back within this many ms after vanishing emits nothing (default 0)
  SNAPSHOT_PATH     state kept across restarts (default ${DEFAULT_SNAPSHOT_PATH})
  WATCH_SCOPE       "host" watches every network namespace (same as --all-netns); default: own namespace
  LISTENER_URL      where to POST events (unset: JSON lines on stdout); see the README for delivery settings
  CONTAINER_ID, CONTAINER_NAME, HOST_NAME   identity overrides
  HOST_NAME_FILE    the host's name, read when pid 1's /etc/hostname is hidden (default ${DEFAULT_HOST_NAME_FILE};
                    mount the host's /etc/hostname there read-only), "none" to skip
  CONTAINER_STATE_DIRS  runtime state read for container names, images and compose labels, ":"-separated
                    (default: /var/lib/docker/containers, containerd's io.containerd.runtime.v2.task, Podman's
                    and CRI-O's overlay-containers, each also under /host), "none" to read none
  REPORT_RUNTIME_SOCKETS  1: report sockets no process of their namespace holds (Docker's embedded DNS on
                    127.0.0.11) as the container's ports; default 0
  VERBOSE_LSOF      1: print the owning processes of each new port (like the seed's lsof dump, from /proc)
  SHUTDOWN_TIMEOUT  seconds to deliver shutdown events before leaving them in the spool (default 5)
  LOG_LEVEL         debug, info, warning, error (default info)
  METRICS_PORT      serve Prometheus metrics at http://METRICS_HOST:METRICS_PORT/metrics (default: off)
  METRICS_HOST      address the metrics endpoint binds (default ${DEFAULT_METRICS_HOST}; 0.0.0.0 for every one)
`;

const LEVELS = ["debug", "info", "warning", "error"] as const;

/** Parse flags and environment; "help" when --help was asked. */
export function loadWatcherConfig(args: string[], env: EnvSource): WatcherConfig | "help" {
  let values: Record<string, boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args,
      options: { "all-netns": { type: "boolean" }, help: { type: "boolean", short: "h" } },
      strict: true,
    }));
  } catch (e) {
    throw new ConfigError("arguments", args.join(" "), `--all-netns or --help (${(e as Error).message})`);
  }
  if (values.help) return "help";
  const get = (name: string) => firstSet(env, name);
  const interval = get("SCAN_INTERVAL");
  const burst = get("BURST_SCANS");
  const delay = get("BURST_DELAY");
  const spread = get("BURST_SPREAD");
  const useProc = get("USE_PROC");
  const ports = firstSet(env, "WATCH_PORTS", "DESIRED_PORTS");
  const grace = get("CLOSE_GRACE_MS");
  const scope = get("WATCH_SCOPE");
  const verbose = get("VERBOSE_LSOF");
  const shutdown = get("SHUTDOWN_TIMEOUT");
  const level = get("LOG_LEVEL");
  const metricsPort = get("METRICS_PORT");
  const metricsHost = get("METRICS_HOST");
  const runtimeSockets = get("REPORT_RUNTIME_SOCKETS");
  if (scope && scope.value !== "host" && scope.value !== "netns") {
    throw new ConfigError(
      scope.name,
      scope.value,
      '"host" (every network namespace) or "netns" (own, default)',
    );
  }
  // An IPv4/IPv6 address or a host name; Deno.serve reports one it cannot bind.
  if (
    metricsHost &&
    !/^(?:[A-Za-z0-9][A-Za-z0-9.-]*|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.%A-Za-z]*)$/.test(metricsHost.value)
  ) {
    throw new ConfigError(
      metricsHost.name,
      metricsHost.value,
      "an IP address or host name, e.g. 127.0.0.1, ::1, 0.0.0.0",
    );
  }
  if (level && !(LEVELS as readonly string[]).includes(level.value)) {
    throw new ConfigError(level.name, level.value, LEVELS.join(", "));
  }
  let backend: Backend = "auto";
  if (useProc) backend = parseBool(useProc.name, useProc.value) ? "proc" : "ss";
  return {
    intervalMs: interval ? parseSecondsMs(interval.name, interval.value) : 1000,
    burstScans: burst ? parseInteger(burst.name, burst.value, 1, 1000) : 1,
    burstDelayMs: delay ? parseSecondsMs(delay.name, delay.value, { allowZero: true }) : 20,
    burstSpread: spread ? parseBool(spread.name, spread.value) : true,
    backend,
    ports: ports ? parsePortList(ports.name, ports.value) : undefined,
    graceMs: grace ? parseInteger(grace.name, grace.value, 0, 3_600_000) : 0,
    snapshotPath: get("SNAPSHOT_PATH")?.value ?? DEFAULT_SNAPSHOT_PATH,
    verbose: verbose ? parseBool(verbose.name, verbose.value) : false,
    allNetns: values["all-netns"] === true || scope?.value === "host",
    shutdownTimeoutMs: shutdown ? parseSecondsMs(shutdown.name, shutdown.value) : 5000,
    logLevel: (level?.value as WatcherConfig["logLevel"]) ?? "info",
    metricsPort: metricsPort ? parsePort(metricsPort.name, metricsPort.value) : undefined,
    metricsHost: metricsHost?.value ?? DEFAULT_METRICS_HOST,
    containerStateDirs: stateDirsFrom(env),
    hostNameFile: hostNameFileFrom(env),
    reportRuntimeSockets: runtimeSockets ? parseBool(runtimeSockets.name, runtimeSockets.value) : false,
  };
}
