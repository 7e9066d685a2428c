/**
 * From sockets to ports: one observation per (proto, port) of a network namespace, with every bound address and
 * every owning pid. Pure; shared by every engine.
 * @module
 */
import type { ListeningSocket } from "../sources/socket.ts";

/** One port seen open in one network namespace. */
export interface PortObservation {
  proto: "tcp" | "udp";
  port: number;
  /** 4 when any bound address is IPv4 (0.0.0.0 and :: on one port are one entry), else 6. */
  family: 4 | 6;
  /** Every local address the port is bound to, sorted. */
  addrs: string[];
  /** Socket inodes behind the port. */
  inodes: number[];
  /** Pids holding any of those sockets, sorted. */
  pids: number[];
  /**
   * The container, when the engine knows it per socket (Tracee enriches its events); otherwise the identity
   * of the namespace applies.
   */
  container?: { id: string | null; name: string | null };
}

/** Group sockets by (proto, port); `pidsOf` maps an inode to the pids holding it. */
export function observePorts(
  sockets: readonly ListeningSocket[],
  pidsOf: (inode: number) => readonly number[] | undefined,
): PortObservation[] {
  const byKey = new Map<string, { obs: PortObservation; addrs: Set<string>; pids: Set<number> }>();
  for (const s of sockets) {
    const key = `${s.proto}/${s.port}`;
    let g = byKey.get(key);
    if (!g) {
      g = {
        obs: { proto: s.proto, port: s.port, family: s.family, addrs: [], inodes: [], pids: [] },
        addrs: new Set(),
        pids: new Set(),
      };
      byKey.set(key, g);
    }
    if (s.family === 4) g.obs.family = 4;
    g.addrs.add(s.addr);
    g.obs.inodes.push(s.inode);
    for (const pid of pidsOf(s.inode) ?? []) g.pids.add(pid);
  }
  const out: PortObservation[] = [];
  for (const { obs, addrs, pids } of byKey.values()) {
    obs.addrs = [...addrs].sort();
    obs.pids = [...pids].sort((a, b) => a - b);
    obs.inodes.sort((a, b) => a - b);
    out.push(obs);
  }
  return out.sort((a, b) => a.proto.localeCompare(b.proto) || a.port - b.port);
}
