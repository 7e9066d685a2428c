/**
 * Drawing the live page from its state: the open ports, grouped by host and container, and the timeline of
 * opens, changes and closes, both through the filters. What the port policy alerts on (its verdict `alert`)
 * is marked: a badge with the severity and the rule's name (its description as the tooltip), the row or item
 * tinted by severity, and the count of unexpected open ports in the header.
 * @module
 */
import { $, el, timeEl } from "./dom.js";
import { visible } from "./filters.js";
import { portKey } from "./ports_rule.js";
import {
  alertLabel,
  alertTitle,
  containerLabel,
  countUnexpected,
  eventDetail,
  policyAlert,
  unexpectedText,
} from "./text.js";

/** How long a new row or event stays highlighted, ms (the CSS animation's length). */
export const FRESH_MS = 2500;

/**
 * What the page draws.
 * @typedef {object} View
 * @property {import("./ports_rule.js").PortTable} ports the open ports
 * @property {any[]} events port events, newest first
 * @property {Map<string, number>} freshAt port key or event id → when it arrived live (for the highlight)
 * @property {boolean} loaded
 */

/** The badge of each event kind. */
const BADGES = /** @type {Record<string, string>} */ ({ open: "open", close: "close", change: "change" });

function processCell(/** @type {any} */ p) {
  const td = el("td", "process");
  if (!p || typeof p !== "object") {
    td.append(el("span", "muted", "unknown"));
    return td;
  }
  if (p.comm) td.append(el("span", "comm", String(p.comm)));
  if (p.cmdline && p.cmdline !== p.comm) {
    const cmd = el("span", "cmdline", String(p.cmdline));
    cmd.title = String(p.cmdline);
    td.append(" ", cmd);
  }
  if (!p.comm && !p.cmdline) td.append(el("span", "muted", "unknown"));
  return td;
}

/** Highlight `node` while what it shows is fresh, continuing the animation where it was. */
function markFresh(
  /** @type {View} */ view,
  /** @type {string} */ key,
  /** @type {HTMLElement} */ node,
  now = Date.now(),
) {
  const at = view.freshAt.get(key);
  if (at === undefined) return;
  const age = now - at;
  if (age >= FRESH_MS) {
    view.freshAt.delete(key);
    return;
  }
  node.classList.add("fresh");
  // Continue the highlight where it was, even though the row is drawn anew (CSSOM: allowed by the CSP).
  node.style.animationDelay = `-${age}ms`;
}

const COLUMNS = [
  ["Port", "c-port"],
  ["Proto", "c-proto"],
  ["Addresses", "c-addrs"],
  ["PIDs", "c-pids"],
  ["Process", "c-process"],
  ["Since", "c-since"],
];
/** The column added when a port policy is in force (some open port carries a verdict). */
const POLICY_COLUMN = ["Policy", "c-policy"];

/**
 * The mark of an alert: `<span class="policy-flag sev-critical" title="Unexpected (…): description">` holding
 * the severity's badge and the rule's name.
 * @param {import("./text.js").PolicyAlert} a
 */
function policyFlag(a) {
  const flag = el("span", `policy-flag sev-${a.severity ?? "warning"}`);
  flag.title = alertTitle(a);
  flag.append(el("span", "visually-hidden", "Unexpected: "), el("span", "policy-badge", alertLabel(a)));
  flag.append(" ", el("span", "policy-rule", a.rule ?? "default"));
  return flag;
}

/** Mark `node` (a row or a timeline item) with the alert of `r`, if any; the alert or null. */
function markAlert(/** @type {any} */ r, /** @type {HTMLElement} */ node) {
  const a = policyAlert(r);
  if (r.policy && typeof r.policy === "object") node.dataset.verdict = a ? "alert" : "allow";
  if (a) node.classList.add("unexpected", `sev-${a.severity ?? "warning"}`);
  return a;
}

/** The policy cell of a port: its alert, "expected" when allowed, a dash without a verdict. */
function policyCell(/** @type {any} */ p, /** @type {import("./text.js").PolicyAlert | null} */ a) {
  const td = el("td", "c-policy");
  if (a) td.append(policyFlag(a));
  else if (p.policy && typeof p.policy === "object") {
    const ok = el("span", "muted", "expected");
    ok.title = p.policy.rule ? `Allowed by rule ${p.policy.rule}` : "Allowed by the policy's default";
    td.append(ok);
  } else td.append(el("span", "muted", "—"));
  return td;
}

function portsTable(
  /** @type {View} */ view,
  /** @type {any[]} */ list,
  /** @type {number} */ now,
  /** @type {boolean} */ withPolicy,
) {
  const first = list[0];
  const table = el("table", "ports-table");
  table.dataset.host = first.host ?? "";
  table.dataset.container = containerLabel(first) ?? "";
  const caption = el("caption");
  const name = containerLabel(first);
  caption.append(el("span", "cap-where", name ?? "host"));
  if (name && first.container_id && first.container_id.slice(0, 12) !== name) {
    caption.append(" ", el("span", "cap-id", first.container_id.slice(0, 12)));
  }
  if (first.image) caption.append(" ", el("span", "cap-image", first.image));
  caption.append(el("span", "cap-host", ` on ${first.host ?? "unknown host"}`));
  caption.append(el("span", "cap-count", ` · ${list.length} ${list.length === 1 ? "port" : "ports"}`));
  table.append(caption);
  const thead = el("thead");
  const hr = el("tr");
  for (const [label, cls] of withPolicy ? [...COLUMNS, POLICY_COLUMN] : COLUMNS) {
    const th = /** @type {HTMLTableCellElement} */ (el("th", cls, label));
    th.scope = "col";
    hr.append(th);
  }
  thead.append(hr);
  const tbody = el("tbody");
  for (const p of list) {
    const key = portKey(p);
    const tr = el("tr");
    tr.dataset.key = key;
    tr.dataset.port = String(p.port);
    tr.dataset.proto = p.proto ?? "";
    const th = /** @type {HTMLTableCellElement} */ (el("th", "c-port num", String(p.port)));
    th.scope = "row";
    tr.append(
      th,
      el("td", "c-proto", p.proto ?? "?"),
      el("td", "c-addrs mono", p.addrs.length ? p.addrs.join(", ") : "—"),
      el("td", "c-pids mono", p.pids.length ? p.pids.join(", ") : "—"),
      processCell(p.process),
    );
    const since = el("td", "c-since");
    since.append(timeEl(p.since, "relative"));
    tr.append(since);
    const alert = markAlert(p, tr);
    if (withPolicy) tr.append(policyCell(p, alert));
    markFresh(view, key, tr, now);
    tbody.append(tr);
  }
  table.append(thead, tbody);
  return table;
}

/** The open ports that pass the filters, one table per host and container. */
export function renderPorts(/** @type {View} */ view) {
  const all = [...view.ports.values()];
  const shown = all.filter(visible).sort((a, b) =>
    (a.host ?? "").localeCompare(b.host ?? "") ||
    (containerLabel(a) ?? "").localeCompare(containerLabel(b) ?? "") ||
    (a.container_id ?? "").localeCompare(b.container_id ?? "") ||
    (a.proto ?? "").localeCompare(b.proto ?? "") || a.port - b.port
  );
  /** @type {Map<string, any[]>} */
  const groups = new Map();
  for (const p of shown) {
    const g = `${p.host ?? ""}\u0000${p.container_id ?? ""}\u0000${p.container_name ?? ""}`;
    const list = groups.get(g);
    if (list) list.push(p);
    else groups.set(g, [p]);
  }
  const now = Date.now();
  // A policy is in force when some open port carries a verdict: then every table has the policy column.
  const withPolicy = all.some((p) => p.policy && typeof p.policy === "object");
  $("ports").replaceChildren(...[...groups.values()].map((list) => portsTable(view, list, now, withPolicy)));
  const unexpected = countUnexpected(all);
  const count = $("unexpected-count");
  count.hidden = !view.loaded || (!withPolicy && unexpected === 0);
  count.dataset.count = String(unexpected);
  count.textContent = unexpectedText(unexpected);
  const loaded = view.loaded;
  $("empty").hidden = !loaded || all.length > 0;
  $("no-match").hidden = all.length === 0 || shown.length > 0;
  if (loaded) {
    $("ports-summary").textContent = all.length === shown.length
      ? `${all.length} open · ${groups.size} ${groups.size === 1 ? "group" : "groups"}`
      : `${shown.length} of ${all.length} open shown`;
  }

  // Suggestions for the container filter: every container and host known.
  const names = new Set();
  for (const p of all) {
    const n = containerLabel(p);
    if (n) names.add(n);
    if (p.host) names.add(p.host);
  }
  const options = [...names].sort().map((n) => {
    const o = /** @type {HTMLOptionElement} */ (el("option"));
    o.value = n;
    return o;
  });
  $("known-containers").replaceChildren(...options);
}

/** The recent events that pass the filters, newest first. */
export function renderTimeline(/** @type {View} */ view) {
  const shown = view.events.filter(visible);
  const now = Date.now();
  const items = shown.map((r) => {
    const li = el("li", `ev ev-${r.event}`);
    li.dataset.id = r.id;
    li.dataset.event = r.event;
    li.dataset.port = String(r.port);
    li.append(timeEl(typeof r.observed_at === "string" ? r.observed_at : String(r.ts), "clock"));
    li.append(" ", el("span", "badge", BADGES[r.event] ?? String(r.event)), " ");
    li.append(el("strong", "ev-port", `${r.port}/${r.proto ?? "?"}`));
    const where = containerLabel(r);
    const host = r.host ?? "unknown host";
    li.append(el("span", "ev-where", where ? ` in ${where} on ${host}` : ` on ${host} (host)`));
    const detail = eventDetail(r);
    if (detail) li.append(el("span", "ev-who", ` · ${detail}`));
    const alert = r.event === "close" ? null : markAlert(r, li);
    if (alert) li.append(" ", policyFlag(alert));
    markFresh(view, r.id, li, now);
    return li;
  });
  $("timeline").replaceChildren(...items);
  const empty = $("timeline-empty");
  empty.hidden = !view.loaded || shown.length > 0;
  if (view.loaded && view.events.length > 0 && shown.length === 0) {
    empty.hidden = false;
    empty.textContent = "No recent event matches the filters.";
  } else {
    empty.textContent = "No opens, changes or closes yet.";
  }
  $("timeline-summary").textContent = !view.loaded
    ? ""
    : shown.length === view.events.length
    ? `last ${view.events.length}, newest first`
    : `${shown.length} of the last ${view.events.length}`;
}

/** Draw everything; highlights that ran out are forgotten first. */
export function render(/** @type {View} */ view) {
  const now = Date.now();
  for (const [key, at] of view.freshAt) if (now - at >= FRESH_MS) view.freshAt.delete(key);
  renderPorts(view);
  renderTimeline(view);
}
