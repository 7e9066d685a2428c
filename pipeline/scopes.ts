/**
 * Scopes, the first stage of the pipeline: which network namespaces are watched (this one, or every one on the
 * host with ALL_NETNS), who each one is (host, container, image, compose labels), and the socket source that
 * scans each. Shared by every engine: polling scans through it; event engines ask it whether an event's
 * namespace is watched and scan through it to seed and reconcile.
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { EnvSource } from "../infra/env.ts";
import type { Backend } from "../sources/open_source.ts";
import { openSource } from "../sources/open_source.ts";
import type { SocketSource } from "../sources/socket.ts";
import { type Identity, netnsInode } from "./scope/identity.ts";
import { NamespaceWatcher } from "./scope/namespaces.ts";
import type { ContainerMetaLookup } from "./scope/runtime_lookup.ts";

const log = getLogger(["portwatch", "watcher"]);

/** One watched network namespace. */
export interface Scope {
  netns: number;
  identity: Identity;
  source: SocketSource;
  path?: string;
  pid?: number;
}

/** What {@link Scopes} needs. */
export interface ScopesOptions {
  /** Every namespace of the host (true), or only this process's. */
  allNetns: boolean;
  /** The socket source to scan with (netlink, proc, ss, auto). */
  backend: Backend;
  env: EnvSource;
  containers: ContainerMetaLookup;
  /** This watcher's own identity: the scope of its own namespace. */
  self: Identity;
}

/** The watched namespaces. */
export class Scopes {
  #scopes = new Map<number, Scope>();
  #namespaces?: NamespaceWatcher;
  #backendNote = "";
  #lastRefresh = 0;

  constructor(readonly options: ScopesOptions) {}

  /** Which backend scans, for the start-up log ("netlink", or "proc (netlink sock_diag unavailable: ...)"). */
  get backend(): string {
    return this.#backendNote;
  }

  /** Set up the scopes (call once). */
  open(): void {
    const { allNetns, env, containers, backend, self } = this.options;
    if (allNetns) {
      this.#namespaces = new NamespaceWatcher("/proc", { env, containers });
      this.refresh();
    } else {
      const chosen = openSource(backend);
      this.#scopes.set(netnsInode(), { netns: netnsInode(), identity: self, source: chosen.source });
      this.#noteBackend(chosen.source.name, chosen.fallbackReason);
    }
  }

  /** The watched namespaces' inodes. */
  inodes(): number[] {
    return [...this.#scopes.keys()];
  }

  /** The scopes, to scan. */
  all(): Iterable<Scope> {
    return this.#scopes.values();
  }

  /** The identity of a watched namespace. */
  identityOf(netns: number): Identity | undefined {
    return this.#scopes.get(netns)?.identity;
  }

  /** True when `netns` is watched (host-wide: the namespace list is refreshed first when it is unknown). */
  watches(netns: number): boolean {
    if (this.#scopes.has(netns)) return true;
    if (!this.#namespaces) return false;
    const now = Date.now();
    if (now - this.#lastRefresh < 200) return false;
    this.#lastRefresh = now;
    this.refresh(); // removals are handled by the next scan
    return this.#scopes.has(netns);
  }

  /** Host-wide: apply namespace changes; returns the scopes that are gone (their ports close with their identity). */
  refresh(): Scope[] {
    if (!this.#namespaces) return [];
    const changes = this.#namespaces.refresh();
    const dropped: Scope[] = [];
    for (const ns of changes.removed) {
      const scope = this.#scopes.get(ns.inode);
      if (!scope) continue;
      scope.source.close();
      this.#scopes.delete(ns.inode);
      dropped.push(scope);
    }
    for (const ns of [...changes.added, ...changes.memberChanged]) {
      const old = this.#scopes.get(ns.inode);
      // A namespace left with no process (pid 0: only its /run/netns name holds it) keeps who it was.
      const identity = ns.pid === 0 && old ? old.identity : ns.identity;
      if (old && old.source.name === "netlink") {
        old.identity = identity; // the netlink socket stays bound to the namespace
        continue;
      }
      old?.source.close();
      try {
        const chosen = openSource(this.options.backend, { path: ns.path, pid: ns.pid });
        this.#noteBackend(chosen.source.name, chosen.fallbackReason);
        this.#scopes.set(ns.inode, {
          netns: ns.inode,
          identity,
          source: chosen.source,
          path: ns.path,
          pid: ns.pid,
        });
      } catch (e) {
        log.warn("cannot watch network namespace {inode} ({path}): {error}", {
          inode: ns.inode,
          path: ns.path,
          error: (e as Error).message,
        });
      }
    }
    return dropped;
  }

  #noteBackend(name: string, reason?: string) {
    const note = reason ? `${name} (netlink sock_diag unavailable: ${reason})` : name;
    if (note !== this.#backendNote) {
      this.#backendNote = note;
      if (reason) log.warn("scanning with {note}", { note });
    }
  }

  /** Close every source. */
  close(): void {
    for (const s of this.#scopes.values()) s.source.close();
    this.#scopes.clear();
  }
}
