/**
 * Oracle: the open-port table both sides are reduced to, per (proto, port): the pids holding any of its
 * sockets and the local addresses they are bound to; built from ss (the truth) and from the listener's
 * `GET /ports` (what portwatch says), compared, and the differences printed.
 * @module
 */
import type { SsSocket } from "./ss_parse.ts";

/** One (proto, port) of the table. */
export interface PortRow {
  proto: string;
  port: number;
  pids: number[];
  addrs: string[];
}

/** (proto, port) -> row, rows with sorted, distinct pids and addresses. */
export type PortTable = Map<string, PortRow>;

/** The key of a row: "tcp/8080". */
export const rowKey = (proto: string, port: number): string => `${proto}/${port}`;

const sortedNums = (xs: Iterable<number>) => [...new Set(xs)].sort((a, b) => a - b);
const sortedStrs = (xs: Iterable<string>) => [...new Set(xs)].sort();

function merge(table: PortTable, proto: string, port: number, pids: number[], addrs: string[]): void {
  const key = rowKey(proto, port);
  const row = table.get(key);
  table.set(key, {
    proto,
    port,
    pids: sortedNums([...(row?.pids ?? []), ...pids]),
    addrs: sortedStrs([...(row?.addrs ?? []), ...addrs]),
  });
}

/** The table of `ss` sockets. */
export function tableFromSs(sockets: readonly SsSocket[]): PortTable {
  const table: PortTable = new Map();
  for (const s of sockets) merge(table, s.proto, s.port, s.users.map((u) => u.pid), [s.addr]);
  return new Map([...table].sort(([a], [b]) => a.localeCompare(b)));
}

/** What `GET /ports` answers (the fields the oracle reads). */
export interface PortsAnswer {
  count: number;
  ports: { proto: string | null; port: number; addrs: string[]; pids: number[] }[];
}

/** The table of a `GET /ports` answer; two entries of one (proto, port) are merged and reported in `dupes`. */
export function tableFromPorts(answer: PortsAnswer): { table: PortTable; dupes: string[] } {
  const table: PortTable = new Map();
  const dupes: string[] = [];
  for (const p of answer.ports) {
    const key = rowKey(p.proto ?? "?", p.port);
    if (table.has(key)) dupes.push(key);
    merge(table, p.proto ?? "?", p.port, p.pids ?? [], p.addrs ?? []);
  }
  return { table: new Map([...table].sort(([a], [b]) => a.localeCompare(b))), dupes };
}

/** One difference between the truth and the listener. */
export interface Mismatch {
  key: string;
  kind: "missing" | "extra" | "pids" | "addrs";
  /** The truth (ss), or undefined for "extra". */
  want?: PortRow;
  /** The listener's, or undefined for "missing". */
  got?: PortRow;
}

const same = <T>(a: readonly T[], b: readonly T[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/** Every difference: ports only in one table, then per common port differing pids or addresses. */
export function compareTables(want: PortTable, got: PortTable): Mismatch[] {
  const out: Mismatch[] = [];
  const keys = [...new Set([...want.keys(), ...got.keys()])].sort();
  for (const key of keys) {
    const w = want.get(key), g = got.get(key);
    if (!g) out.push({ key, kind: "missing", want: w });
    else if (!w) out.push({ key, kind: "extra", got: g });
    else {
      if (!same(w.pids, g.pids)) out.push({ key, kind: "pids", want: w, got: g });
      if (!same(w.addrs, g.addrs)) out.push({ key, kind: "addrs", want: w, got: g });
    }
  }
  return out;
}

const rowText = (r: PortRow) => `pids [${r.pids.join(",")}] addrs [${r.addrs.join(", ")}]`;

/** One line per mismatch: "tcp/8080 pids: ss [1,2] listener [1]". */
export function formatMismatches(mismatches: readonly Mismatch[]): string {
  return mismatches.map((m) => {
    switch (m.kind) {
      case "missing":
        return `${m.key} missing from the listener (ss: ${rowText(m.want!)})`;
      case "extra":
        return `${m.key} in the listener but not in ss (listener: ${rowText(m.got!)})`;
      case "pids":
        return `${m.key} pids: ss [${m.want!.pids.join(",")}] listener [${m.got!.pids.join(",")}]`;
      case "addrs":
        return `${m.key} addrs: ss [${m.want!.addrs.join(", ")}] listener [${m.got!.addrs.join(", ")}]`;
    }
  }).join("\n");
}

/** A table, one row per line, for failure messages ("(empty)" when it is). */
export function formatTable(table: PortTable): string {
  if (table.size === 0) return "  (empty)";
  return [...table.values()].map((r) => `  ${rowKey(r.proto, r.port)} ${rowText(r)}`).join("\n");
}
