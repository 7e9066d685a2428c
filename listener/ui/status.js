/**
 * What the live page says about itself: the connection status, an alert with a retry button, and the polite
 * live region that reads new events out.
 * @module
 */
import { $, el } from "./dom.js";

/** Show the connection state (`data-state` drives the dot's colour) and its text. */
export function setStatus(/** @type {string} */ kind, /** @type {string} */ text) {
  const status = $("status");
  if (status.dataset.state === kind && $("status-text").textContent === text) return;
  status.dataset.state = kind;
  $("status-text").textContent = text;
}

/** Show `text` in the alert box, with a "Try again" button when `retry` is given. */
export function showAlert(/** @type {string} */ text, /** @type {(() => void) | undefined} */ retry) {
  const box = $("alert");
  const p = el("p", null, text);
  box.replaceChildren(p);
  if (retry) {
    const b = /** @type {HTMLButtonElement} */ (el("button", "button", "Try again"));
    b.type = "button";
    b.addEventListener("click", () => {
      hideAlert();
      retry();
    });
    box.append(b);
  }
  box.hidden = false;
}

export function hideAlert() {
  $("alert").hidden = true;
  $("alert").replaceChildren();
}

/** @type {string[]} */
let pending = [];
/** @type {ReturnType<typeof setTimeout> | undefined} */
let announceTimer;
/** Say new events in the polite live region, a burst as one message. */
export function announce(/** @type {string} */ text) {
  pending.push(text);
  if (announceTimer !== undefined) return;
  announceTimer = setTimeout(() => {
    const n = pending.length;
    $("announcer").textContent = n === 1 ? `${pending[0]}.` : `${n} port events; latest: ${pending[n - 1]}.`;
    pending = [];
    announceTimer = undefined;
  }, 1000);
}
