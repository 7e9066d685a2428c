/**
 * Small DOM helpers of the live page: look up an element, make one, make a <time>.
 * @module
 */
import { relative } from "./text.js";

/** The element with this id (the page has every id the scripts ask for). */
export const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));

/**
 * @param {string} tag
 * @param {string | null} [cls]
 * @param {string | null} [text]
 */
export function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = text;
  return e;
}

const absFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "long" });
const clockFmt = new Intl.DateTimeFormat(undefined, {
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});
const dayFmt = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });

/** A <time> element; `mode` "relative" (kept current by {@link tick}) or "clock". */
export function timeEl(/** @type {string} */ iso, /** @type {"relative" | "clock"} */ mode) {
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

/** Bring every relative <time> up to date. */
export function tick() {
  const now = Date.now();
  for (const t of document.querySelectorAll("time[data-rel]")) {
    t.textContent = relative(Number(/** @type {HTMLElement} */ (t).dataset.rel), now);
  }
}
