/**
 * The settings of attribution: where the container runtimes' state is read (CONTAINER_STATE_DIRS), where the
 * host's name is read when pid 1's is hidden (HOST_NAME_FILE), and whether runtime-owned sockets are reported
 * (REPORT_RUNTIME_SOCKETS, parsed in ./config.ts). Each parser returns the value or throws a ConfigError naming
 * the variable, the value and what is accepted.
 * @module
 */
import { ConfigError, type EnvSource, firstSet } from "../../infra/env.ts";

/**
 * Where runtime state is looked for by default: each runtime's directory on this machine, then the same under
 * /host (where a watcher container gets the host's mounted read-only).
 */
export const DEFAULT_CONTAINER_STATE_DIRS: readonly string[] = Object.freeze(
  [
    "/var/lib/docker/containers",
    "/run/containerd/io.containerd.runtime.v2.task",
    "/var/lib/containers/storage/overlay-containers",
    "/run/containers/storage/overlay-containers",
  ].flatMap((d) => [d, `/host${d}`]),
);

/** Where the host's name is read when pid 1's /etc/hostname cannot be (a read-only mount of the host's file). */
export const DEFAULT_HOST_NAME_FILE = "/host/etc/hostname";

// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
const ACCEPTED_DIRS =
  'absolute directory paths separated by ":" or ",", e.g. "/var/lib/docker/containers:/host/var/lib/docker/containers", or "none"';

/**
 * CONTAINER_STATE_DIRS: a list of absolute directories, each a runtime's per-container state directory (Docker's
 * `<data-root>/containers`, containerd's `io.containerd.runtime.v2.task`, containers/storage's
 * `overlay-containers`); the kind of each is recognised by what it holds. "none": read no runtime state.
 * @example
 * ```ts
 * parseStateDirs("CONTAINER_STATE_DIRS", "/srv/docker/containers:/host/srv/docker/containers");
 * // ["/srv/docker/containers", "/host/srv/docker/containers"]
 * ```
 */
export function parseStateDirs(name: string, value: string): string[] {
  const v = value.trim();
  if (v === "none") return [];
  const dirs = v.split(/[:,]/).map((d) => d.trim()).filter((d) => d !== "");
  if (dirs.length === 0) throw new ConfigError(name, value, ACCEPTED_DIRS);
  for (const d of dirs) {
    if (!d.startsWith("/") || CONTROL.test(d) || d.split("/").includes("..")) {
      throw new ConfigError(name, value, `${ACCEPTED_DIRS}; ${JSON.stringify(d)} is not an absolute path`);
    }
  }
  return [...new Set(dirs.map((d) => d.replace(/(.)\/+$/, "$1")))];
}

/**
 * HOST_NAME_FILE: an absolute path to a file whose first line is the host's name; "none": no such file.
 * @example
 * ```ts
 * parseHostNameFile("HOST_NAME_FILE", "/host/etc/hostname"); // "/host/etc/hostname"
 * ```
 */
export function parseHostNameFile(name: string, value: string): string | null {
  const v = value.trim();
  if (v === "none") return null;
  if (!v.startsWith("/") || CONTROL.test(v) || v.endsWith("/")) {
    throw new ConfigError(name, value, 'an absolute file path, e.g. "/host/etc/hostname", or "none"');
  }
  return v;
}

/** CONTAINER_STATE_DIRS from `env`, else {@link DEFAULT_CONTAINER_STATE_DIRS}. Throws a ConfigError. */
export function stateDirsFrom(env: EnvSource): string[] {
  const s = firstSet(env, "CONTAINER_STATE_DIRS");
  return s ? parseStateDirs(s.name, s.value) : [...DEFAULT_CONTAINER_STATE_DIRS];
}

/** HOST_NAME_FILE from `env`, else {@link DEFAULT_HOST_NAME_FILE}; null for "none". Throws a ConfigError. */
export function hostNameFileFrom(env: EnvSource): string | null {
  const s = firstSet(env, "HOST_NAME_FILE");
  return s ? parseHostNameFile(s.name, s.value) : DEFAULT_HOST_NAME_FILE;
}
