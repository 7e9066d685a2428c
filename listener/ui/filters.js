/**
 * The page's filters (container or host, ports, protocol): read from and written to the URL, applied to the
 * open ports and to the timeline alike.
 * @module
 */
import { $ } from "./dom.js";

/** @typedef {{ container: string, port: string, proto: string }} Filters */

/** The filters as typed. */
let filters = /** @type {Filters} */ ({ container: "", port: "", proto: "" });
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
  };
  /** @type {HTMLInputElement} */ ($("f-container")).value = filters.container;
  /** @type {HTMLInputElement} */ ($("f-port")).value = filters.port;
  /** @type {HTMLSelectElement} */ ($("f-proto")).value = filters.proto;
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
  };
  updatePortRanges();
  const url = new URL(location.href);
  for (const [name, value] of Object.entries(filters)) {
    if (value.trim() === "") url.searchParams.delete(name);
    else url.searchParams.set(name, value.trim());
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
