/**
 * portwatch's live ports page. Plain ES module, no framework, nothing fetched but the listener's own API.
 *
 * Start: GET /events?limit=200 (newest first) and then GET /ports, then the stream
 * /events/stream?last_event_id=<newest id>: the listener replays every event stored after that id, then live
 * ones, so nothing between the two reads and the stream is missed. Events are applied to the open-port table
 * exactly as the listener's PortsState does (an open sets the entry of its host/container/netns/proto/port, a
 * close deletes it): an event seen twice leaves the same table, so overlap is harmless; the timeline skips ids
 * it already holds. EventSource reconnects by itself, sending Last-Event-ID; when it gives up (the listener
 * answered with an error status), a new one is opened after a back-off with the newest id seen.
 */

const MAX_EVENTS = 200;
const SEEN_IDS = 5000;
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30_000;
const FRESH_MS = 2500;
const TICK_MS = 15_000;

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

const state = {
  /** @type {Map<string, any>} key → open port (the /ports shape) */
  ports: new Map(),
  /** @type {any[]} port events, newest first, at most MAX_EVENTS */
  events: [],
  /** @type {Set<string>} ids already in the timeline (bounded) */
  seen: new Set(),
  /** @type {string | undefined} newest stored id received */
  lastId: undefined,
  /** @type {Map<string, number>} port key or event id → when it arrived live (for the highlight) */
  freshAt: new Map(),
  /** @type {EventSource | null} */
  es: null,
  /** @type {any[] | null} stream events held while the first state is re-read (empty log at start) */
  buffer: null,
  retryMs: RETRY_MIN_MS,
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  retryTimer: undefined,
  loaded: false,
  filters: { container: "", port: "", proto: "" },
  /** @type {[number, number][] | null} */
  portRanges: null,
};

// ---------------------------------------------------------------------------------------------- the model

/** The listener's key for a port: host, container, network namespace, proto, port. */
function portKey(/** @type {any} */ r) {
  return `${r.host ?? ""}\u0000${r.container_id ?? ""}\u0000${r.netns ?? ""}\u0000${
    r.proto ?? ""
  }\u0000${r.port}`;
}

function isPortEvent(/** @type {any} */ r) {
  return r !== null && typeof r === "object" && typeof r.port === "number" &&
    (r.event === "open" || r.event === "close");
}

const str = (/** @type {unknown} */ v) => (typeof v === "string" ? v : null);
const num = (/** @type {unknown} */ v) => (typeof v === "number" ? v : null);

/** Apply one event to the open-port table, as listener/ports_state.ts does. */
function applyPort(/** @type {any} */ r) {
  const key = portKey(r);
  if (r.event === "close") {
    state.ports.delete(key);
    return;
  }
  const prev = state.ports.get(key);
  state.ports.set(key, {
    host: str(r.host),
    container_id: str(r.container_id),
    container_name: str(r.container_name),
    image: str(r.image),
    compose_project: str(r.compose_project),
    compose_service: str(r.compose_service),
    netns: num(r.netns),
    proto: str(r.proto),
    port: r.port,
    family: num(r.family),
    addrs: Array.isArray(r.addrs) ? r.addrs : [],
    pids: Array.isArray(r.pids) ? r.pids : [],
    process: r.process ?? null,
    source: str(r.source),
    since: prev?.since ?? str(r.observed_at) ?? String(r.ts),
    ts: String(r.ts),
    event_id: String(r.id),
  });
}

function remember(/** @type {string} */ id) {
  state.seen.add(id);
  if (state.seen.size > SEEN_IDS) state.seen.delete(state.seen.values().next().value);
}

/** Take one stored record from the stream. */
function receive(/** @type {any} */ r, /** @type {string} */ streamId) {
  const id = streamId || (typeof r?.id === "string" ? r.id : "");
  if (id) state.lastId = id;
  if (!isPortEvent(r)) return;
  // Always applied: replays are in log order, so the table ends right even when an event comes twice.
  applyPort(r);
  if (!state.seen.has(r.id)) {
    remember(r.id);
    state.events.unshift(r);
    if (state.events.length > MAX_EVENTS) state.events.length = MAX_EVENTS;
    const now = Date.now();
    state.freshAt.set(r.id, now);
    if (r.event === "open") state.freshAt.set(portKey(r), now);
    if (visible(r)) announce(describe(r));
  }
  scheduleRender();
}

// ---------------------------------------------------------------------------------------------- loading

class HttpError extends Error {
  constructor(/** @type {number} */ status, /** @type {string} */ message) {
    super(message);
    this.status = status;
  }
}

async function getJSON(/** @type {string} */ path) {
  const res = await fetch(path, { headers: { accept: "application/json" }, cache: "no-store" });
  if (!res.ok) {
    let detail = "";
    try {
      detail = (await res.json()).error ?? "";
    } catch { /* not JSON */ }
    throw new HttpError(res.status, `${path}: HTTP ${res.status}${detail ? ` (${detail})` : ""}`);
  }
  return res.json();
}

/** Read the recent events and the open ports; resolves with them, newest event first. */
async function readState() {
  // Events first, ports second: an event stored in between is in /ports and is replayed by the stream
  // (harmless, see applyPort); the other order could miss it.
  const events = (await getJSON(`/events?limit=${MAX_EVENTS}`)).events ?? [];
  const ports = (await getJSON("/ports")).ports ?? [];
  return { events, ports };
}

async function load() {
  clearTimeout(state.retryTimer);
  setStatus("connecting", "Connecting…");
  let read;
  try {
    read = await readState();
  } catch (e) {
    return failed(e, load);
  }
  state.ports = new Map(read.ports.map((/** @type {any} */ p) => [portKey(p), p]));
  state.events = [];
  state.seen.clear();
  for (const r of read.events) {
    if (!isPortEvent(r) || state.seen.has(r.id)) continue;
    remember(r.id);
    state.events.push(r);
  }
  state.lastId = read.events[0]?.id;
  state.loaded = true;
  hideAlert();
  render();
  connect(state.lastId === undefined);
}

/**
 * Open the stream after the newest id seen. `resync`: nothing was stored at start, so there was no id to
 * resume from; once the stream is open (the listener subscribes it before answering), the state is read again
 * and the events that came meanwhile are applied on top of it.
 */
function connect(/** @type {boolean} */ resync) {
  const url = new URL("/events/stream", location.href);
  if (state.lastId) url.searchParams.set("last_event_id", state.lastId);
  const es = new EventSource(url);
  state.es = es;
  state.buffer = resync ? [] : null;
  es.addEventListener("open", () => {
    if (state.es !== es) return;
    state.retryMs = RETRY_MIN_MS;
    setStatus("live", "Live");
    if (state.buffer) resyncNow(es);
  });
  es.addEventListener("message", (m) => {
    if (state.es !== es) return;
    let r;
    try {
      r = JSON.parse(m.data);
    } catch {
      return;
    }
    if (state.buffer) state.buffer.push({ r, id: m.lastEventId });
    else receive(r, m.lastEventId);
  });
  es.addEventListener("error", () => {
    if (state.es !== es) return;
    if (es.readyState === EventSource.CONNECTING) {
      // The browser retries by itself (the listener asks for 1 s) and sends Last-Event-ID.
      setStatus("reconnecting", "Reconnecting…");
      return;
    }
    // CLOSED: the listener answered with an error status; the browser will not retry.
    es.close();
    state.es = null;
    state.buffer = null;
    probeAndRetry();
  });
}

async function resyncNow(/** @type {EventSource} */ es) {
  let read;
  try {
    read = await readState();
  } catch (e) {
    console.warn("portwatch: could not re-read the state after connecting", e);
  }
  if (state.es !== es || !state.buffer) return;
  const held = state.buffer;
  state.buffer = null;
  if (read) {
    const heldIds = new Set(held.map((h) => h.r?.id));
    state.ports = new Map(read.ports.map((/** @type {any} */ p) => [portKey(p), p]));
    // Events read now but not streamed were stored before the stream began: older than every held one.
    for (const r of [...read.events].reverse()) {
      if (!isPortEvent(r) || heldIds.has(r.id) || state.seen.has(r.id)) continue;
      remember(r.id);
      state.events.unshift(r);
      state.lastId = r.id;
    }
    if (state.events.length > MAX_EVENTS) state.events.length = MAX_EVENTS;
  }
  for (const h of held) receive(h.r, h.id);
  render();
}

/** After the stream closed: tell a missing token from an unreachable listener, then retry. */
async function probeAndRetry() {
  try {
    await getJSON("/ports?port=1");
  } catch (e) {
    if (e instanceof HttpError && e.status === 401) return failed(e, reconnect);
  }
  scheduleRetry(reconnect);
}

function reconnect() {
  clearTimeout(state.retryTimer);
  setStatus("reconnecting", "Reconnecting…");
  connect(state.lastId === undefined);
}

function failed(/** @type {unknown} */ e, /** @type {() => void} */ again) {
  if (!state.loaded) $("ports-summary").textContent = "not available";
  if (e instanceof HttpError && e.status === 401) {
    setStatus("unauthorized", "Token required");
    showAlert(
      "This listener requires a bearer token (LISTENER_TOKEN) on its API, and a browser page cannot send " +
        "one on the event stream, so this page cannot show its ports. Read them with " +
        "curl -H 'Authorization: Bearer <token>' on /ports and /events, or open this page on a listener " +
        "started without LISTENER_TOKEN.",
      again,
    );
    return;
  }
  console.warn("portwatch:", e);
  scheduleRetry(again);
}

function scheduleRetry(/** @type {() => void} */ again) {
  clearTimeout(state.retryTimer);
  const ms = state.retryMs;
  state.retryMs = Math.min(state.retryMs * 2, RETRY_MAX_MS);
  setStatus("offline", `Listener unreachable, retrying in ${Math.round(ms / 1000)} s`);
  state.retryTimer = setTimeout(again, ms);
}

// ---------------------------------------------------------------------------------------------- filters

/** Parse "5000", "3000,8000-8100"; null for no filter. Throws with a message on a bad value. */
function parsePorts(/** @type {string} */ text) {
  if (text.trim() === "") return null;
  /** @type {[number, number][]} */
  const ranges = [];
  for (const raw of text.split(",")) {
    const part = raw.trim();
    if (part === "") continue;
    const m = /^(\d{1,5})(?:\s*-\s*(\d{1,5}))?$/.exec(part);
    const lo = m ? Number(m[1]) : NaN;
    const hi = m ? Number(m[2] ?? m[1]) : NaN;
    if (!m || lo < 1 || hi > 65535 || lo > hi) {
      throw new Error(`"${part}" is not a port (1-65535) or a range such as 8000-8100.`);
    }
    ranges.push([lo, hi]);
  }
  return ranges.length > 0 ? ranges : null;
}

/** True when a port or event passes the filters. */
function visible(/** @type {any} */ r) {
  const f = state.filters;
  if (f.proto && r.proto !== f.proto) return false;
  if (state.portRanges && !state.portRanges.some(([lo, hi]) => r.port >= lo && r.port <= hi)) return false;
  if (f.container) {
    const q = f.container.trim().toLowerCase();
    const hay = [r.container_name, r.container_id, r.host].filter((v) => typeof v === "string")
      .map((v) => v.replace(/^\//, "").toLowerCase());
    if (q && !hay.some((v) => v.includes(q))) return false;
  }
  return true;
}

function readFiltersFromUrl() {
  const q = new URLSearchParams(location.search);
  const proto = q.get("proto") ?? "";
  state.filters = {
    container: q.get("container") ?? "",
    port: q.get("port") ?? "",
    proto: proto === "tcp" || proto === "udp" ? proto : "",
  };
  /** @type {HTMLInputElement} */ ($("f-container")).value = state.filters.container;
  /** @type {HTMLInputElement} */ ($("f-port")).value = state.filters.port;
  /** @type {HTMLSelectElement} */ ($("f-proto")).value = state.filters.proto;
  updatePortRanges();
}

function updatePortRanges() {
  const input = /** @type {HTMLInputElement} */ ($("f-port"));
  const error = $("f-port-error");
  try {
    state.portRanges = parsePorts(state.filters.port);
    input.removeAttribute("aria-invalid");
    error.hidden = true;
    error.textContent = "";
  } catch (e) {
    state.portRanges = null; // a bad value filters nothing and says why
    input.setAttribute("aria-invalid", "true");
    error.hidden = false;
    error.textContent = `Port filter ignored: ${/** @type {Error} */ (e).message}`;
  }
}

function filtersChanged() {
  state.filters = {
    container: /** @type {HTMLInputElement} */ ($("f-container")).value,
    port: /** @type {HTMLInputElement} */ ($("f-port")).value,
    proto: /** @type {HTMLSelectElement} */ ($("f-proto")).value,
  };
  updatePortRanges();
  const url = new URL(location.href);
  for (const [name, value] of Object.entries(state.filters)) {
    if (value.trim() === "") url.searchParams.delete(name);
    else url.searchParams.set(name, value.trim());
  }
  history.replaceState(null, "", url);
  render();
}

// ---------------------------------------------------------------------------------------------- rendering

const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
const absFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "long" });
const clockFmt = new Intl.DateTimeFormat(undefined, {
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});
const dayFmt = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });

function relative(/** @type {number} */ t, now = Date.now()) {
  const s = Math.round((t - now) / 1000);
  const a = Math.abs(s);
  if (a < 45) return rtf.format(s, "second");
  if (a < 45 * 60) return rtf.format(Math.round(s / 60), "minute");
  if (a < 22 * 3600) return rtf.format(Math.round(s / 3600), "hour");
  return rtf.format(Math.round(s / 86400), "day");
}

/** A <time> element; `mode` "relative" (kept current by the ticker) or "clock". */
function timeEl(/** @type {string} */ iso, /** @type {"relative" | "clock"} */ mode) {
  const el = document.createElement("time");
  const t = Date.parse(iso);
  if (Number.isNaN(t)) {
    el.textContent = iso || "unknown";
    return el;
  }
  el.dateTime = new Date(t).toISOString();
  el.title = absFmt.format(t);
  if (mode === "relative") {
    el.dataset.rel = String(t);
    el.textContent = relative(t);
  } else {
    const d = new Date(t);
    const today = new Date().toDateString() === d.toDateString();
    el.textContent = today ? clockFmt.format(t) : `${dayFmt.format(t)} ${clockFmt.format(t)}`;
  }
  return el;
}

/**
 * @param {string} tag
 * @param {string | null} [cls]
 * @param {string | null} [text]
 */
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = text;
  return e;
}

function containerLabel(/** @type {any} */ r) {
  const name = typeof r.container_name === "string" ? r.container_name.replace(/^\//, "") : "";
  if (name) return name;
  if (typeof r.container_id === "string") return r.container_id.slice(0, 12);
  return null;
}

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

function describe(/** @type {any} */ r) {
  const where = containerLabel(r);
  const verb = r.event === "open" ? "opened" : "closed";
  return `Port ${r.port}/${r.proto ?? "?"} ${verb}${where ? ` in ${where}` : ""}${
    r.host ? ` on ${r.host}` : ""
  }`;
}

function isFresh(/** @type {string} */ key, /** @type {HTMLElement} */ node, now = Date.now()) {
  const at = state.freshAt.get(key);
  if (at === undefined) return;
  const age = now - at;
  if (age >= FRESH_MS) {
    state.freshAt.delete(key);
    return;
  }
  node.classList.add("fresh");
  // Continue the highlight where it was, even though the row is drawn anew (CSSOM: allowed by the CSP).
  node.style.animationDelay = `-${age}ms`;
}

function renderPorts() {
  const all = [...state.ports.values()];
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
  const tables = [];
  for (const list of groups.values()) {
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
    for (
      const [label, cls] of [
        ["Port", "c-port"],
        ["Proto", "c-proto"],
        ["Addresses", "c-addrs"],
        ["PIDs", "c-pids"],
        ["Process", "c-process"],
        ["Since", "c-since"],
      ]
    ) {
      const th = el("th", cls, label);
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
      const th = el("th", "c-port num", String(p.port));
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
      isFresh(key, tr, now);
      tbody.append(tr);
    }
    table.append(thead, tbody);
    tables.push(table);
  }
  $("ports").replaceChildren(...tables);
  const loaded = state.loaded;
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
    const o = el("option");
    /** @type {HTMLOptionElement} */ (o).value = n;
    return o;
  });
  $("known-containers").replaceChildren(...options);
}

function renderTimeline() {
  const shown = state.events.filter(visible);
  const now = Date.now();
  const items = shown.map((r) => {
    const li = el("li", `ev ev-${r.event}`);
    li.dataset.id = r.id;
    li.dataset.event = r.event;
    li.dataset.port = String(r.port);
    li.append(timeEl(str(r.observed_at) ?? String(r.ts), "clock"));
    li.append(" ", el("span", "badge", r.event === "open" ? "open" : "close"), " ");
    li.append(el("strong", "ev-port", `${r.port}/${r.proto ?? "?"}`));
    const where = containerLabel(r);
    const host = r.host ?? "unknown host";
    li.append(el("span", "ev-where", where ? ` in ${where} on ${host}` : ` on ${host} (host)`));
    const closing = r.event === "close" && Array.isArray(r.last_pids);
    const pids = closing ? r.last_pids : r.pids;
    const who = r.process?.comm ? String(r.process.comm) : "";
    const pidText = Array.isArray(pids) && pids.length
      ? `${closing ? "was pid" : "pid"} ${pids.join(", ")}`
      : "";
    if (who || pidText) li.append(el("span", "ev-who", ` · ${[who, pidText].filter(Boolean).join(" ")}`));
    isFresh(r.id, li, now);
    return li;
  });
  $("timeline").replaceChildren(...items);
  $("timeline-empty").hidden = !state.loaded || shown.length > 0;
  if (state.loaded && state.events.length > 0 && shown.length === 0) {
    $("timeline-empty").hidden = false;
    $("timeline-empty").textContent = "No recent event matches the filters.";
  } else {
    $("timeline-empty").textContent = "No opens or closes yet.";
  }
  $("timeline-summary").textContent = !state.loaded
    ? ""
    : shown.length === state.events.length
    ? `last ${state.events.length}, newest first`
    : `${shown.length} of the last ${state.events.length}`;
}

let renderQueued = false;
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  setTimeout(render, 16);
}

function render() {
  renderQueued = false;
  const now = Date.now();
  for (const [key, at] of state.freshAt) if (now - at >= FRESH_MS) state.freshAt.delete(key);
  renderPorts();
  renderTimeline();
}

function tick() {
  const now = Date.now();
  for (const t of document.querySelectorAll("time[data-rel]")) {
    t.textContent = relative(Number(/** @type {HTMLElement} */ (t).dataset.rel), now);
  }
}

// ---------------------------------------------------------------------------------------------- status

function setStatus(/** @type {string} */ kind, /** @type {string} */ text) {
  const status = $("status");
  if (status.dataset.state === kind && $("status-text").textContent === text) return;
  status.dataset.state = kind;
  $("status-text").textContent = text;
}

function showAlert(/** @type {string} */ text, /** @type {(() => void) | undefined} */ retry) {
  const box = $("alert");
  const p = el("p", null, text);
  box.replaceChildren(p);
  if (retry) {
    const b = /** @type {HTMLButtonElement} */ (el("button", "button", "Try again"));
    b.type = "button";
    b.addEventListener("click", () => {
      state.retryMs = RETRY_MIN_MS;
      hideAlert();
      retry();
    });
    box.append(b);
  }
  box.hidden = false;
}

function hideAlert() {
  $("alert").hidden = true;
  $("alert").replaceChildren();
}

/** @type {string[]} */
let pending = [];
/** @type {ReturnType<typeof setTimeout> | undefined} */
let announceTimer;
/** Say new events in the polite live region, a burst as one message. */
function announce(/** @type {string} */ text) {
  pending.push(text);
  if (announceTimer !== undefined) return;
  announceTimer = setTimeout(() => {
    const n = pending.length;
    $("announcer").textContent = n === 1 ? `${pending[0]}.` : `${n} port events; latest: ${pending[n - 1]}.`;
    pending = [];
    announceTimer = undefined;
  }, 1000);
}

// ---------------------------------------------------------------------------------------------- start

function start() {
  readFiltersFromUrl();
  const form = /** @type {HTMLFormElement} */ ($("filters"));
  form.addEventListener("input", filtersChanged);
  form.addEventListener("change", filtersChanged);
  form.addEventListener("submit", (e) => e.preventDefault());
  // "reset" fires before the fields are cleared.
  form.addEventListener("reset", () => setTimeout(filtersChanged, 0));
  document.addEventListener("click", (e) => {
    const target = /** @type {HTMLElement} */ (e.target);
    if (target.closest?.("[data-action=clear-filters]")) {
      form.reset();
      /** @type {HTMLInputElement} */ ($("f-container")).focus();
    }
  });
  setInterval(tick, TICK_MS);
  render();
  load();
}

start();
