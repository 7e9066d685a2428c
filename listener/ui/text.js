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

/**
 * An alert verdict of the port policy, as the page shows it.
 * @typedef {object} PolicyAlert
 * @property {"info" | "warning" | "critical" | null} severity null when the verdict names none
 * @property {string | null} rule the rule that decided; null for the policy's default
 * @property {string | null} description the rule's description, when it has one
 */

/** The severities, worst first. */
export const SEVERITIES = /** @type {const} */ (["critical", "warning", "info"]);

/**
 * The alert a port or port event carries: its `policy` verdict when that is `alert`, else null (allowed, or no
 * policy was in force).
 * @example
 * ```js
 * policyAlert({ policy: { verdict: "alert", rule: "no-node-debugger", severity: "critical" } });
 * // { severity: "critical", rule: "no-node-debugger", description: null }
 * policyAlert({ policy: { verdict: "allow", rule: null } }); // null
 * ```
 * @param {{ policy?: unknown }} r
 * @returns {PolicyAlert | null}
 */
export function policyAlert(r) {
  const p = /** @type {Record<string, unknown> | null | undefined} */ (r.policy);
  if (!p || typeof p !== "object" || p.verdict !== "alert") return null;
  const severity = SEVERITIES.find((s) => s === p.severity) ?? null;
  return {
    severity,
    rule: typeof p.rule === "string" && p.rule !== "" ? p.rule : null,
    description: typeof p.description === "string" && p.description !== "" ? p.description : null,
  };
}

/**
 * True when the port policy says this port (or port event) should not be open: its verdict is `alert`.
 * @param {{ policy?: unknown }} r
 */
export function isUnexpected(r) {
  return policyAlert(r) !== null;
}

/**
 * True when a port event belongs under "Unexpected only". An open or a change carries the policy's verdict and
 * counts when that is an alert. A close carries none: it counts when the port it closes was unexpected then,
 * judged by `before`, the port's entry as the page held it before the close was applied (undefined when the
 * page did not hold the port open: such a close does not count).
 * @example
 * ```js
 * const open = { event: "open", port: 9229, policy: { verdict: "alert", rule: "no-node-debugger" } };
 * unexpectedEvent({ event: "close", port: 9229 }, open); // true: the port was unexpected when it closed
 * unexpectedEvent({ event: "close", port: 9229 }, undefined); // false: not known open
 * ```
 * @param {Record<string, unknown>} r
 * @param {{ policy?: unknown } | null} [before]
 * @returns {boolean}
 */
export function unexpectedEvent(r, before) {
  if (r.event !== "close") return isUnexpected(r);
  return before !== undefined && before !== null && isUnexpected(before);
}

/**
 * The alert's badge text: its severity, or "alert" when the verdict names none.
 * @param {PolicyAlert} a
 */
export function alertLabel(a) {
  return a.severity ?? "alert";
}

/**
 * The alert in a few words, e.g. `critical, rule no-node-debugger` or `warning, the policy's default`.
 * @param {PolicyAlert} a
 */
export function alertSummary(a) {
  return `${alertLabel(a)}, ${a.rule === null ? "the policy's default" : `rule ${a.rule}`}`;
}

/**
 * The alert's tooltip: what it is and the rule's description, e.g. `Unexpected (critical, rule
 * no-node-debugger): Node's inspector must not be reachable`.
 * @param {PolicyAlert} a
 */
export function alertTitle(a) {
  return `Unexpected (${alertSummary(a)})${a.description ? `: ${a.description}` : ""}`;
}

/**
 * How many of `ports` are unexpected.
 * @param {Iterable<{ policy?: unknown }>} ports
 */
export function countUnexpected(ports) {
  let n = 0;
  for (const p of ports) if (isUnexpected(p)) n++;
  return n;
}

/**
 * The header's count, e.g. `2 unexpected ports open`, `No unexpected port open`.
 * @param {number} n
 */
export function unexpectedText(n) {
  if (n === 0) return "No unexpected port open";
  return `${n} unexpected ${n === 1 ? "port" : "ports"} open`;
}

/** Past tense of each event kind, for announcements. */
const VERBS = /** @type {Record<string, string>} */ ({ open: "opened", close: "closed", change: "changed" });

/**
 * One sentence for the live region, e.g. `Port 5000/tcp opened in web on node-1`, `Port 5000/tcp changed in
 * web on node-1: holders 123 → 456`, `Port 9229/tcp opened on h, unexpected (critical, rule
 * no-node-debugger)`.
 * @param {Record<string, unknown>} r
 * @returns {string}
 */
export function describe(r) {
  const where = containerLabel(r);
  const verb = VERBS[String(r.event)] ?? String(r.event);
  const alert = r.event === "close" ? null : policyAlert(r);
  return `Port ${r.port}/${r.proto ?? "?"} ${verb}${where ? ` in ${where}` : ""}${
    r.host ? ` on ${r.host}` : ""
  }${alert ? `, unexpected (${alertSummary(alert)})` : ""}${
    r.event === "change" ? `: ${changeText(r)}` : ""
  }`;
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
