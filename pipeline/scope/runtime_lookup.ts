/**
 * Reads what the container runtimes' state on disk says about a container (see ./runtime_state.ts for the
 * files), from a list of state directories (CONTAINER_STATE_DIRS), once per container id: the answer, found or
 * not, is cached (a container that is recreated has a new id). The kind of each directory is recognised by what
 * it holds:
 *
 * - `<dir>/<id>/config.v2.json`: Docker's `<data-root>/containers`;
 * - `<dir>/<id>/userdata/config.json` and `<dir>/containers.json`: containers/storage's `overlay-containers`
 *   (Podman under /var/lib/containers, CRI-O's runtime copy under /run/containers);
 * - `<dir>/<namespace>/<id>/config.json`: containerd's `io.containerd.runtime.v2.task` (namespaces `moby`,
 *   `k8s.io`, `default`, ...).
 *
 * Missing directories and files, and ones this process may not read, are skipped silently; a file that is there
 * but cannot be parsed is logged once (warning) and skipped. What several files say is merged, the first
 * directory's first.
 * @module
 */
import { getLogger } from "@logtape/logtape";
import {
  type ContainerMeta,
  isEmptyMeta,
  mergeMeta,
  NO_META,
  parseDockerConfigV2,
  parseOciBundleConfig,
  parseStorageContainers,
} from "./runtime_state.ts";

const log = getLogger(["portwatch", "watcher"]);

const HEX_ID = /^[0-9a-f]{12,64}$/;

/** Options of {@link ContainerMetaLookup}. */
export interface ContainerMetaLookupOptions {
  /** At most this many ids are remembered (the oldest are forgotten first); default 4096. */
  maxEntries?: number;
}

function readOrNull(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return null; // missing, not a file, or not ours to read
  }
}

function entries(dir: string): Deno.DirEntry[] {
  try {
    return [...Deno.readDirSync(dir)];
  } catch {
    return [];
  }
}

/**
 * Container metadata by id, read from runtime state directories and cached per id; see the module doc.
 * @example
 * ```ts
 * const lookup = new ContainerMetaLookup(["/var/lib/docker/containers", "/host/var/lib/docker/containers"]);
 * const meta = lookup.get("d548c5b83fa61d8e3bd86ad42a7ffea9b7c86e3f9d8095c1577d3e1270bb9420");
 * // meta?.name === "portwatcher", meta?.image === "portwatch_portwatcher", or null when nothing was found
 * ```
 */
export class ContainerMetaLookup {
  /** The directories read, in order. */
  readonly dirs: readonly string[];
  /** Counters, for tests: lookups that read the disk, and those answered from the cache. */
  readonly stats = { reads: 0, hits: 0 };
  readonly #max: number;
  readonly #cache = new Map<string, ContainerMeta | null>();
  readonly #warned = new Set<string>();

  /** A lookup over `dirs`; nothing is read until {@link ContainerMetaLookup.get}. */
  constructor(dirs: readonly string[], options: ContainerMetaLookupOptions = {}) {
    this.dirs = [...dirs];
    this.#max = options.maxEntries ?? 4096;
  }

  /**
   * What the runtimes' state says about the container `id` (full, or a 12+ hex digit prefix), or null when no
   * directory knows it (or `id` is not a hex id). Read once per id.
   */
  get(id: string): ContainerMeta | null {
    if (this.#cache.has(id)) {
      this.stats.hits++;
      return this.#cache.get(id)!;
    }
    this.stats.reads++;
    const meta = HEX_ID.test(id) ? this.#read(id) : null;
    if (this.#cache.size >= this.#max) this.#cache.delete(this.#cache.keys().next().value!);
    this.#cache.set(id, meta);
    return meta;
  }

  #read(id: string): ContainerMeta | null {
    let meta: ContainerMeta = NO_META;
    for (const dir of this.dirs) {
      for (const found of this.#fromDir(dir, id)) meta = mergeMeta(meta, found);
    }
    return isEmptyMeta(meta) ? null : meta;
  }

  /** What `dir` says about `id`, in any of the three layouts. */
  *#fromDir(dir: string, id: string): Generator<ContainerMeta> {
    const list = entries(dir);
    if (list.length === 0) return;
    const full = fullIdIn(list, id);
    if (full !== null) {
      const withId = (m: ContainerMeta): ContainerMeta => ({ ...m, id: m.id ?? full });
      const docker = this.#parse(`${dir}/${full}/config.v2.json`, parseDockerConfigV2);
      if (docker) yield withId(docker);
      const bundle = this.#parse(`${dir}/${full}/userdata/config.json`, parseOciBundleConfig);
      if (bundle) yield withId(bundle);
    }
    if (list.some((e) => e.name === "containers.json" && !e.isDirectory)) {
      const all = this.#parse(`${dir}/containers.json`, parseStorageContainers);
      if (all) {
        const key = all.has(id) ? id : [...all.keys()].find((k) => k.startsWith(id));
        if (key !== undefined) yield all.get(key)!;
      }
    }
    // containerd: <dir>/<namespace>/<id>/config.json
    for (const ns of list) {
      if (!ns.isDirectory || HEX_ID.test(ns.name)) continue;
      const nsFull = fullIdIn(entries(`${dir}/${ns.name}`), id);
      if (nsFull === null) continue;
      const bundle = this.#parse(`${dir}/${ns.name}/${nsFull}/config.json`, parseOciBundleConfig);
      if (bundle) yield { ...bundle, id: bundle.id ?? nsFull };
    }
  }

  /** Parse the file at `path` with `parse`; null when it cannot be read, logged once when it cannot be parsed. */
  #parse<T>(path: string, parse: (text: string) => T): T | null {
    const text = readOrNull(path);
    if (text === null) return null;
    try {
      return parse(text);
    } catch (e) {
      if (!this.#warned.has(path)) {
        this.#warned.add(path);
        log.warn("cannot read container state {path}: {error}", { path, error: (e as Error).message });
      }
      return null;
    }
  }
}

/** The entry of `list` that is `id` or, for a short id, the one id that starts with it; else null. */
function fullIdIn(list: Deno.DirEntry[], id: string): string | null {
  if (list.some((e) => e.name === id)) return id;
  if (id.length >= 64) return null;
  const matches = list.filter((e) => HEX_ID.test(e.name) && e.name.startsWith(id));
  return matches.length === 1 ? matches[0].name : null;
}
