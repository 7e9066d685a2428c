/**
 * portwatch's live ports page. Plain ES modules, no framework, nothing fetched but the listener's own API.
 *
 * Start: GET /events?limit=200 (newest first) and then GET /ports, then the stream
 * /events/stream?last_event_id=<newest id>: the listener replays every event stored after that id, then live
 * ones, so nothing between the two reads and the stream is missed. Events are applied to the open-port table
 * by the listener's own rule (ports_rule.js, which listener/ports_state.ts uses too: an open sets the entry
 * of its host/container/netns/proto/port, a change refreshes its holders and addresses, a close deletes it):
 * an event seen twice leaves the same table, so overlap is harmless; the timeline skips ids it already holds.
 * EventSource reconnects by itself, sending Last-Event-ID; when it gives up (the listener answered with an
 * error status), a new one is opened after a back-off with the newest id seen.
 *
 * A listener with a token (LISTENER_TOKEN) answers 401 until the page signs in: the page then shows its
 * sign-in form (status.js), and once the listener has set its session cookie, starts again; every request
 * after that, the stream included, carries the cookie (same origin).
 *
 * The other modules: text.js (what the page says), dom.js, filters.js, render.js (the tables and the
 * timeline), status.js (status, alert, live region, sign-in).
 */
import { isPortEvent, portKey, PortTable } from "./ports_rule.js";
import { $, tick } from "./dom.js";
import { startFilters, visible } from "./filters.js";
import { render as draw } from "./render.js";
import { announce, hideAlert, hideSignIn, refreshSignedIn, setStatus, showSignIn } from "./status.js";
import { describe, unexpectedEvent } from "./text.js";

const MAX_EVENTS = 200;
const SEEN_IDS = 5000;
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30_000;
const TICK_MS = 15_000;

const state = {
  /** The open ports (the /ports shape), kept by the listener's rule. */
  ports: new PortTable(),
  /**
   * Port events, newest first, at most MAX_EVENTS. A close carries no verdict: the page notes on it
   * `closedUnexpected` (its own field, not the listener's), whether its port was unexpected when it closed,
   * for the "Unexpected only" filter.
   * @type {any[]}
   */
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
};

// ---------------------------------------------------------------------------------------------- the model

function remember(/** @type {string} */ id) {
  state.seen.add(id);
  if (state.seen.size > SEEN_IDS) state.seen.delete(state.seen.values().next().value);
}

/** Take one stored record from the stream. */
function receive(/** @type {any} */ r, /** @type {string} */ streamId) {
  const id = streamId || (typeof r?.id === "string" ? r.id : "");
  if (id) state.lastId = id;
  if (!isPortEvent(r)) return;
  const fresh = !state.seen.has(r.id);
  // Judged by the port's entry before the close is applied: the close itself carries no verdict.
  if (fresh && r.event === "close") r.closedUnexpected = unexpectedEvent(r, state.ports.get(r));
  // Always applied: replays are in log order, so the table ends right even when an event comes twice.
  state.ports.apply(r);
  if (fresh) {
    remember(r.id);
    state.events.unshift(r);
    if (state.events.length > MAX_EVENTS) state.events.length = MAX_EVENTS;
    const now = Date.now();
    state.freshAt.set(r.id, now);
    if (r.event !== "close") state.freshAt.set(portKey(r), now);
    if (visible(r)) announce(describe(r));
  }
  scheduleRender();
}

/**
 * Judge the closes in `events` (newest first) that were read rather than seen live, their ports gone from the
 * table: by the events before each one in the list (a close whose port opened before them does not count).
 */
function judgeCloses(/** @type {any[]} */ events) {
  const before = new PortTable();
  for (let i = events.length - 1; i >= 0; i--) {
    const r = events[i];
    if (r.event === "close" && r.closedUnexpected !== true) {
      r.closedUnexpected = unexpectedEvent(r, before.get(r));
    }
    before.apply(r);
  }
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
  // (harmless, see receive); the other order could miss it.
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
  state.ports.load(read.ports);
  state.events = [];
  state.seen.clear();
  for (const r of read.events) {
    if (!isPortEvent(r) || state.seen.has(r.id)) continue;
    remember(r.id);
    state.events.push(r);
  }
  judgeCloses(state.events);
  state.lastId = read.events[0]?.id;
  state.loaded = true;
  hideAlert();
  hideSignIn();
  refreshSignedIn();
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
    state.ports.load(read.ports);
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
  judgeCloses(state.events);
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
    // The listener wants its token: sign in (a session cookie), then start again.
    setStatus("unauthorized", "Sign-in required");
    hideAlert();
    showSignIn(() => {
      state.retryMs = RETRY_MIN_MS;
      again();
    });
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

// ---------------------------------------------------------------------------------------------- drawing

let renderQueued = false;
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  setTimeout(render, 16);
}

function render() {
  renderQueued = false;
  draw(state);
}

// ---------------------------------------------------------------------------------------------- start

function start() {
  startFilters(render);
  setInterval(tick, TICK_MS);
  render();
  load();
}

start();
