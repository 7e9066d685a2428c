/**
 * The ledger's reconciliation: a namespace's sockets and their holders made to agree with a scan of it, counting
 * what the events had not accounted for (see SocketLedger.reconcile).
 * @module
 */
import type { ListeningSocket } from "../sources/socket.ts";
import type { LiveSocket, SocketIndex } from "./ledger_index.ts";

/**
 * Make `netns` in `ix` agree with `scanned`; returns the drift: sockets added or removed, and sockets whose
 * holders differed in a pid not `flagged` (the events had asked for its recheck). A scan that found no holder
 * leaves the holders as they are; sockets in `skip` are not judged.
 */
export function reconcileIndex(
  ix: SocketIndex,
  netns: number,
  scanned: readonly ListeningSocket[],
  pidsOf: (inode: number) => readonly number[],
  skip: ReadonlySet<string> | undefined,
  flagged: (pid: number) => boolean,
): number {
  const seen = new Set<string>();
  let drift = 0;
  for (const sock of scanned) {
    const key = `ino:${sock.inode}`;
    seen.add(key);
    if (skip?.has(key)) continue;
    const pids = pidsOf(sock.inode);
    // A socket known under another key (Tracee: pid:fd) that matches proto/port/addr is the same one.
    const known = ix.get(key) ?? ix.aliasOf(netns, sock.proto, sock.port, sock.addr);
    if (known) {
      if (known.key !== key) ix.rekey(known, key, sock.inode);
      if (pids.length > 0 && setHolders(ix, known, pids, flagged)) drift++;
      continue;
    }
    ix.add({
      key,
      netns,
      proto: sock.proto,
      family: sock.family,
      addr: sock.addr,
      port: sock.port,
      inode: sock.inode,
      pids: new Set(pids),
      fds: new Set(),
    });
    drift++;
  }
  for (const s of ix.sockets(netns)) {
    if (!seen.has(s.key) && !skip?.has(s.key)) {
      ix.remove(s.key);
      drift++;
    }
  }
  return drift;
}

/** `s` is held by `pids` (a scan's word); whether that differed from the ledger in a pid not flagged. */
function setHolders(
  ix: SocketIndex,
  s: LiveSocket,
  pids: readonly number[],
  flagged: (pid: number) => boolean,
): boolean {
  const now = new Set(pids);
  const differ = [...s.pids].filter((p) => !now.has(p)).concat(pids.filter((p) => !s.pids.has(p)));
  if (differ.length === 0) return false;
  for (const p of [...s.pids]) if (!now.has(p)) ix.dropHolder(s, p);
  for (const p of pids) s.pids.add(p);
  ix.touch(s);
  return differ.some((p) => !flagged(p));
}
