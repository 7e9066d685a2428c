// @ts-check
/**
 * What the live page says about ports and events, as plain text: no DOM here, so listener/ui/text_test.ts
 * checks it in Deno.
 * @module
 */

/**
 * The container's name as `docker ps` shows it, else its short id; null on a host.
 * @param {{ container_name?: unknown, container_id?: unknown }} r
 * @returns {string | null}
 */
export function containerLabel(r) {
  const name = typeof r.container_name === "string" ? r.container_name.replace(/^\//, "") : "";
  if (name) return name;
  if (typeof r.container_id === "string") return r.container_id.slice(0, 12);
  return null;
}

/** @param {unknown} v */
const list = (v) => (Array.isArray(v) && v.length > 0 ? v.join(", ") : "none");

/** @param {unknown} a @param {unknown} b */
function sameList(a, b) {
  if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
  const sorted = (/** @type {unknown[]} */ v) => v.map(String).sort();
  const x = sorted(a), y = sorted(b);
  return x.every((v, i) => v === y[i]);
}

/**
 * What a change event changed, e.g. `holders 123 → 456` or `holders 123 → 123, 456; addresses 0.0.0.0 →
 * 0.0.0.0, ::`. Before-values the event lacks are not guessed: `holders now 456`.
 * @param {Record<string, unknown>} r
 * @returns {string}
 */
export function changeText(r) {
  const parts = [];
  if (!Array.isArray(r.last_pids)) parts.push(`holders now ${list(r.pids)}`);
  else if (!sameList(r.last_pids, r.pids)) parts.push(`holders ${list(r.last_pids)} → ${list(r.pids)}`);
  if (Array.isArray(r.last_addrs) && !sameList(r.last_addrs, r.addrs)) {
    parts.push(`addresses ${list(r.last_addrs)} → ${list(r.addrs)}`);
  }
  // A change that says nothing changed (a watcher that saw the same holders again): name them.
  if (parts.length === 0) parts.push(`holders ${list(r.pids)}`);
  return parts.join("; ");
}

/**
 * The timeline's detail of a port event after where it happened: the process, then its pids (`pid 123`, on a
 * close `was pid 123`), or for a change what changed. Empty when there is nothing to say.
 * @param {Record<string, unknown>} r
 * @returns {string}
 */
export function eventDetail(r) {
  const proc = /** @type {{ comm?: unknown } | null | undefined} */ (r.process);
  const who = proc && typeof proc === "object" && proc.comm ? String(proc.comm) : "";
  let what = "";
  if (r.event === "change") what = changeText(r);
  else {
    const closing = r.event === "close" && Array.isArray(r.last_pids);
    const pids = closing ? r.last_pids : r.pids;
    if (Array.isArray(pids) && pids.length > 0) what = `${closing ? "was pid" : "pid"} ${pids.join(", ")}`;
  }
  return [who, what].filter(Boolean).join(" ");
}

/** Past tense of each event kind, for announcements. */
const VERBS = /** @type {Record<string, string>} */ ({ open: "opened", close: "closed", change: "changed" });

/**
 * One sentence for the live region, e.g. `Port 5000/tcp opened in web on node-1`, `Port 5000/tcp changed in
 * web on node-1: holders 123 → 456`.
 * @param {Record<string, unknown>} r
 * @returns {string}
 */
export function describe(r) {
  const where = containerLabel(r);
  const verb = VERBS[String(r.event)] ?? String(r.event);
  return `Port ${r.port}/${r.proto ?? "?"} ${verb}${where ? ` in ${where}` : ""}${
    r.host ? ` on ${r.host}` : ""
  }${r.event === "change" ? `: ${changeText(r)}` : ""}`;
}

const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

/**
 * `t` relative to `now`, e.g. "5 seconds ago", "in 2 minutes".
 * @param {number} t
 * @param {number} [now]
 */
export function relative(t, now = Date.now()) {
  const s = Math.round((t - now) / 1000);
  const a = Math.abs(s);
  if (a < 45) return rtf.format(s, "second");
  if (a < 45 * 60) return rtf.format(Math.round(s / 60), "minute");
  if (a < 22 * 3600) return rtf.format(Math.round(s / 3600), "hour");
  return rtf.format(Math.round(s / 86400), "day");
}
