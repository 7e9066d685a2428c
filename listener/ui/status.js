/**
 * What the live page says about itself and asks of its user: the connection status (and hiding the alert
 * box), the polite live region that reads new events out, and the sign-in a listener with a token
 * (LISTENER_TOKEN) asks for. Signing in posts the token as JSON to `POST /signin` (never in a URL, never kept
 * by the page: the field is emptied); the listener answers with an HttpOnly session cookie, which every later
 * request of the page (fetch, EventSource: same origin) carries. "Sign out" is a plain form post to
 * `/signout`.
 * @module
 */
import { $ } from "./dom.js";

/** Show the connection state (`data-state` drives the dot's colour) and its text. */
export function setStatus(/** @type {string} */ kind, /** @type {string} */ text) {
  const status = $("status");
  if (status.dataset.state === kind && $("status-text").textContent === text) return;
  status.dataset.state = kind;
  $("status-text").textContent = text;
}

/** Hide the alert box and empty it. */
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

/** @type {(() => void) | undefined} called once a sign-in succeeded */
let onSignedIn;
let signInWired = false;

/**
 * Show the sign-in form (the listener answered 401); `signedIn` is called once the listener took the token
 * and set its session cookie.
 */
export function showSignIn(/** @type {() => void} */ signedIn) {
  onSignedIn = signedIn;
  const section = $("signin");
  if (!signInWired) {
    $("signin-form").addEventListener("submit", (e) => {
      e.preventDefault();
      submitSignIn();
    });
    signInWired = true;
  }
  setSignedIn(false);
  if (section.hidden) {
    section.hidden = false;
    $("signin-token").focus();
  }
}

/** Hide the sign-in form. */
export function hideSignIn() {
  $("signin").hidden = true;
  signInError("");
}

/** Show or hide the "Sign out" control (shown while the page reads the listener through a session cookie). */
export function setSignedIn(/** @type {boolean} */ on) {
  $("signout").hidden = !on;
}

function signInError(/** @type {string} */ text) {
  const p = $("signin-error");
  p.textContent = text;
  p.hidden = text === "";
  if (text) $("signin-token").setAttribute("aria-invalid", "true");
  else $("signin-token").removeAttribute("aria-invalid");
}

async function submitSignIn() {
  const input = /** @type {HTMLInputElement} */ ($("signin-token"));
  const button = /** @type {HTMLButtonElement} */ ($("signin-submit"));
  const token = input.value;
  if (token === "") {
    signInError("Enter the listener's token (LISTENER_TOKEN).");
    input.focus();
    return;
  }
  button.disabled = true;
  /** @type {Response} */
  let res;
  try {
    res = await fetch("/signin", {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({ token }),
      cache: "no-store",
      credentials: "same-origin",
    });
  } catch {
    signInError("The listener cannot be reached; try again.");
    return;
  } finally {
    button.disabled = false;
  }
  if (res.ok) {
    await res.body?.cancel();
    input.value = "";
    hideSignIn();
    setSignedIn(true);
    onSignedIn?.();
    return;
  }
  let detail = "";
  try {
    detail = (await res.json()).error ?? "";
  } catch { /* not JSON */ }
  signInError(
    res.status === 401 ? "Wrong token: not signed in." : `Not signed in: ${detail || `HTTP ${res.status}`}.`,
  );
  input.select();
}

/**
 * Ask the listener whether this page reads it through a session cookie (`GET /session`; the cookie is
 * HttpOnly, so the page cannot look), and show "Sign out" accordingly.
 */
export async function refreshSignedIn() {
  try {
    const res = await fetch("/session", { headers: { accept: "application/json" }, cache: "no-store" });
    const body = res.ok ? await res.json() : null;
    setSignedIn(Boolean(body?.session));
  } catch {
    // An older listener without /session, or unreachable: leave the control as it is.
  }
}
