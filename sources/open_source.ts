/**
 * Choosing the socket source for a network namespace: netlink sock_diag where it works (the default), the
 * /proc/net parser (USE_PROC=1, or where netlink is unavailable), or spawned ss (USE_PROC=0).
 * @module
 */
import { NetlinkSource, NetlinkUnavailableError } from "./netlink.ts";
import { ProcNetSource } from "./proc_net.ts";
import { SsSource } from "./ss_source.ts";
import type { SocketSource } from "./socket.ts";

/** Where a namespace is: its ns path (/proc/<pid>/ns/net or /run/netns/NAME) and a member pid (0: none). */
/** Which source scans: netlink sock_diag, /proc/net text, `ss`, or auto (netlink, else /proc/net). */
export type Backend = "auto" | "netlink" | "proc" | "ss";

export interface NamespaceRef {
  path?: string;
  pid?: number;
}

/** The source chosen, and why when it is not the one asked for. */
export interface ChosenSource {
  source: SocketSource;
  fallbackReason?: string;
}

/** Open a source of the given backend for a namespace (own namespace when `ns` is empty). */
export function openSource(backend: Backend, ns: NamespaceRef = {}): ChosenSource {
  const procRoot = ns.pid ? `/proc/${ns.pid}/net` : "/proc/net";
  switch (backend) {
    case "proc":
      return { source: new ProcNetSource({ root: procRoot }) };
    case "ss":
      return { source: new SsSource(ns.path) };
    case "netlink":
      return { source: new NetlinkSource({ netns: ns.path }) };
    case "auto":
      try {
        return { source: new NetlinkSource({ netns: ns.path }) };
      } catch (e) {
        if (!(e instanceof NetlinkUnavailableError)) throw e;
        if (!ns.pid && ns.path) throw e; // a named namespace with no process: /proc cannot reach it
        return { source: new ProcNetSource({ root: procRoot }), fallbackReason: e.message };
      }
  }
}
