/**
 * The page's filters (container or host, ports, protocol, unexpected only): read from and written to the URL
 * (`?container=&port=&proto=&unexpected=1`), applied to the open ports and to the timeline alike.
 * @module
 */
import { $ } from "./dom.js";
import { isUnexpected } from "./text.js";

/**
 * `unexpected`: only what the port policy alerts on: open ports, opens and changes with an alert verdict, and
 * closes of ports that were unexpected when they closed (app.js notes that on each close, see text.js
 * unexpectedEvent).
 * @typedef {{ container: string, port: string, proto: string, unexpected: boolean }} Filters
 */

/** The filters as typed. */
let filters = /** @type {Filters} */ ({ container: "", port: "", proto: "", unexpected: false });
/** The port filter parsed; null when there is none or it is not valid. @type {[number, number][] | null} */
let portRanges = null;

/** Parse "5000", "3000,8000-8100"; null for no filter. Throws with a message on a bad value. */
export function parsePorts(/** @type {string} */ text) {
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
export function visible(/** @type {any} */ r) {
  const f = filters;
  if (f.unexpected && !(r.event === "close" ? r.closedUnexpected === true : isUnexpected(r))) return false;
  if (f.proto && r.proto !== f.proto) return false;
  if (portRanges && !portRanges.some(([lo, hi]) => r.port >= lo && r.port <= hi)) return false;
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
  filters = {
    container: q.get("container") ?? "",
    port: q.get("port") ?? "",
    proto: proto === "tcp" || proto === "udp" ? proto : "",
    unexpected: q.get("unexpected") === "1",
  };
  /** @type {HTMLInputElement} */ ($("f-container")).value = filters.container;
  /** @type {HTMLInputElement} */ ($("f-port")).value = filters.port;
  /** @type {HTMLSelectElement} */ ($("f-proto")).value = filters.proto;
  /** @type {HTMLInputElement} */ ($("f-unexpected")).checked = filters.unexpected;
  updatePortRanges();
}

function updatePortRanges() {
  const input = /** @type {HTMLInputElement} */ ($("f-port"));
  const error = $("f-port-error");
  try {
    portRanges = parsePorts(filters.port);
    input.removeAttribute("aria-invalid");
    error.hidden = true;
    error.textContent = "";
  } catch (e) {
    portRanges = null; // a bad value filters nothing and says why
    input.setAttribute("aria-invalid", "true");
    error.hidden = false;
    error.textContent = `Port filter ignored: ${/** @type {Error} */ (e).message}`;
  }
}

function filtersChanged() {
  filters = {
    container: /** @type {HTMLInputElement} */ ($("f-container")).value,
    port: /** @type {HTMLInputElement} */ ($("f-port")).value,
    proto: /** @type {HTMLSelectElement} */ ($("f-proto")).value,
    unexpected: /** @type {HTMLInputElement} */ ($("f-unexpected")).checked,
  };
  updatePortRanges();
  const url = new URL(location.href);
  for (const [name, value] of Object.entries(filters)) {
    const text = typeof value === "boolean" ? (value ? "1" : "") : value.trim();
    if (text === "") url.searchParams.delete(name);
    else url.searchParams.set(name, text);
  }
  history.replaceState(null, "", url);
}

/**
 * Take the filters from the URL, and follow the form from now on: `changed` is called after each edit (the
 * URL already updated).
 */
export function startFilters(/** @type {() => void} */ changed) {
  readFiltersFromUrl();
  const form = /** @type {HTMLFormElement} */ ($("filters"));
  const edited = () => {
    filtersChanged();
    changed();
  };
  form.addEventListener("input", edited);
  form.addEventListener("change", edited);
  form.addEventListener("submit", (e) => e.preventDefault());
  // "reset" fires before the fields are cleared.
  form.addEventListener("reset", () => setTimeout(edited, 0));
  document.addEventListener("click", (e) => {
    const target = /** @type {HTMLElement} */ (e.target);
    if (target.closest?.("[data-action=clear-filters]")) {
      form.reset();
      /** @type {HTMLInputElement} */ ($("f-container")).focus();
    }
  });
}
