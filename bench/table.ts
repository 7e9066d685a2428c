/** Markdown tables and number formatting for benchmark reports. */

/** A Markdown table with `header` and `rows`, columns padded to line up in a terminal. */
export function markdownTable(header: string[], rows: string[][], align?: ("left" | "right")[]): string {
  const widths = header.map((h, i) => Math.max(3, h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const right = (i: number) => (align?.[i] ?? "left") === "right";
  const line = (cells: string[]) =>
    "| " +
    widths.map((w, i) => right(i) ? (cells[i] ?? "").padStart(w) : (cells[i] ?? "").padEnd(w)).join(" | ") +
    " |";
  const rule = "| " + widths.map((w, i) => right(i) ? "-".repeat(w - 1) + ":" : "-".repeat(w)).join(" | ") +
    " |";
  return [line(header), rule, ...rows.map(line)].join("\n");
}

/** A count or rate with thousands separators and no decimals, e.g. `12,345`; `n/a` when undefined. */
export function fmtInt(n: number | undefined): string {
  return n === undefined || !Number.isFinite(n) ? "n/a" : Math.round(n).toLocaleString("en-US");
}

/** Milliseconds with 2 decimals and a unit, e.g. `2.72 ms`; `n/a` when undefined. */
export function fmtMs(ms: number | undefined): string {
  return ms === undefined || !Number.isFinite(ms) ? "n/a" : `${ms.toFixed(2)} ms`;
}

/** A ratio with 2 decimals and a `x`, e.g. `1.38x`; `n/a` when either side is missing or zero. */
export function fmtRatio(a: number | undefined, b: number | undefined): string {
  return a === undefined || b === undefined || b === 0 ? "n/a" : `${(a / b).toFixed(2)}x`;
}

/** Mebibytes with 1 decimal, e.g. `48.2`; `n/a` when undefined. */
export function fmtMb(mb: number | undefined): string {
  return mb === undefined || !Number.isFinite(mb) ? "n/a" : mb.toFixed(1);
}
