/**
 * Enrichment, one stage of the pipeline: a tracked change becomes its wire event with everything known about it:
 * the namespace's identity (host, container, image, compose labels), or the container the engine named per
 * socket (Tracee) completed from the runtime's state; the holding process (comm, command line, uid); the
 * watcher's clock and a UUIDv7 id. The reporter gets finished events and only reports them.
 *
 * @example
 * ```ts
 * const enricher = new Enricher({ identityOf: () => self, processInfo: (pid) => resolver.processInfo(pid) });
 * const events = enricher.events(changes, self, "polling");
 * ```
 * @module
 */
import type { PortEvent, Source } from "../events/schema.ts";
import { toPortEvent } from "./event_build.ts";
import type { ProcInfo } from "./pid_resolver.ts";
import type { Identity } from "./scope/identity.ts";
import type { ContainerMeta } from "./scope/runtime_state.ts";
import type { PortChange } from "./tracker.ts";

/** Where enrichment reads what it adds. */
export interface EnricherOptions {
  /** The identity of a watched namespace (the scopes'). */
  identityOf: (netns: number) => Identity | undefined;
  /** What a process is (the holders' resolver's /proc reads). */
  processInfo: (pid: number) => ProcInfo | undefined;
  /** What the runtime's state says about a container an engine named per socket (Tracee), by id. */
  containerMeta?: (id: string) => ContainerMeta | null;
}

/** Turns tracked changes into wire events. */
export class Enricher {
  constructor(readonly options: EnricherOptions) {}

  /**
   * The events of `changes` as seen by engine `source`, all stamped `now`: each with its namespace's identity
   * (else `fallback`) and, for opens and changes, the process of its first holder.
   */
  events(changes: readonly PortChange[], fallback: Identity, source: Source, now = new Date()): PortEvent[] {
    const { identityOf, processInfo, containerMeta } = this.options;
    return changes.map((c) => {
      const proc = c.kind !== "close" && c.port.pids.length > 0 ? processInfo(c.port.pids[0]) : undefined;
      const identity = identityOf(c.port.netns) ?? fallback;
      return toPortEvent(c, identity, source, now, proc ? { ...proc } : undefined, containerMeta);
    });
  }

  /** VERBOSE_LSOF: one line per holder of an open or changed port, as lsof would describe it. */
  holderLines(e: PortEvent): string[] {
    if (e.event === "close") return [];
    const lines: string[] = [];
    for (const pid of e.pids) {
      const p = this.options.processInfo(pid);
      if (!p) continue;
      lines.push(
        `  ${p.comm} ${p.pid} uid=${p.uid} ${e.proto.toUpperCase()} ${
          e.addrs.join(",")
        }:${e.port} ${p.cmdline}`,
      );
    }
    return lines;
  }
}
