/**
 * Writing the session cookie (session.ts makes its value): `portwatch_session`, HttpOnly (no script reads
 * it), SameSite=Strict (no other site's page makes the browser send it), Path=/, and Secure when the request
 * came over https.
 * @module
 */
import type { Context } from "hono";
import { setCookie } from "hono/cookie";
import { type IssuedSession, SESSION_COOKIE } from "./session.ts";

/**
 * True when the request came over https: its URL says so, or a proxy in front of the listener said so with
 * `X-Forwarded-Proto: https` (its first value, when proxies were chained).
 * @example
 * ```ts
 * app.get("/", (c) => c.text(isHttps(c) ? "https" : "http"));
 * ```
 */
export function isHttps(c: Context): boolean {
  if (new URL(c.req.url).protocol === "https:") return true;
  const forwarded = c.req.header("x-forwarded-proto");
  return forwarded?.split(",")[0].trim().toLowerCase() === "https";
}

/** The cookie's attributes for this request, but for Max-Age. */
function attributes(c: Context) {
  return { path: "/", httpOnly: true, sameSite: "Strict", secure: isHttps(c) } as const;
}

/** Set the session cookie of `session` on the response: it expires with the session. */
export function setSessionCookie(c: Context, session: IssuedSession): void {
  setCookie(c, SESSION_COOKIE, session.value, { ...attributes(c), maxAge: session.maxAge });
}

/** Tell the browser to forget its session cookie (same attributes, Max-Age=0). */
export function clearSessionCookie(c: Context): void {
  setCookie(c, SESSION_COOKIE, "", { ...attributes(c), maxAge: 0 });
}
