/**
 * The listener's authorisation when LISTENER_TOKEN is set: the bearer header, as for every client, or, for
 * reads only, the live page's session cookie (see session.ts). Writes (`POST /ingest`, any method but GET and
 * HEAD) still need the bearer header, so a page a browser visits elsewhere cannot make the browser write with
 * the cookie (it is SameSite=Strict as well).
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { getCookie } from "hono/cookie";
import { SESSION_COOKIE, type Sessions } from "./session.ts";
import { clearSessionCookie } from "./cookie.ts";

/** The methods a session cookie authorises: those that change nothing. */
export const COOKIE_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD"]);

/** What {@link sessionOrBearerAuth} needs. */
export interface AuthOptions {
  /** The listener's token (LISTENER_TOKEN). */
  token: string;
  /** The sessions made with that token (shared with the /signin route). */
  sessions: Sessions;
}

/** An error message that names the path, as the listener's other 401s do. */
const message = (text: string) => (c: { req: { path: string } }) => ({
  ok: false,
  error: `${text} (${c.req.path})`,
});

/** A 401 with the bearer challenge and a JSON error naming the path. */
function deny(c: Context, text: string): Response {
  c.header("WWW-Authenticate", 'Bearer realm=""');
  return c.json(message(text)(c), 401);
}

/**
 * Middleware: lets a request through with `Authorization: Bearer <token>` (hono/bearer-auth, with the
 * listener's error messages), or without that header when it is a GET or HEAD carrying a valid session cookie.
 * A request with the header is judged by the header alone. A cookie that is no longer valid (expired, or made
 * with an earlier token) is answered 401 and cleared; a cookie on a write is answered 401 naming the header
 * the write needs.
 * @example
 * ```ts
 * const sessions = createSessions({ token: "s3cret" });
 * app.use("*", sessionOrBearerAuth({ token: "s3cret", sessions }));
 * ```
 */
export function sessionOrBearerAuth(options: AuthOptions): MiddlewareHandler {
  const bearer = bearerAuth({
    token: options.token,
    noAuthenticationHeader: { message: message("missing Authorization: Bearer <LISTENER_TOKEN> header") },
    invalidAuthenticationHeader: {
      message: message("Authorization header is not of the form Bearer <token>"),
    },
    invalidToken: { message: message("wrong bearer token") },
  });
  return async (c, next) => {
    if (c.req.header("authorization") !== undefined) return bearer(c, next);
    const cookie = getCookie(c, SESSION_COOKIE);
    if (cookie === undefined) return bearer(c, next); // says the header is missing, as it always did
    if ((await options.sessions.verify(cookie)) === null) {
      clearSessionCookie(c);
      return deny(
        c,
        "the session cookie has expired or is no longer valid (LISTENER_TOKEN changed?): sign in again " +
          "with POST /signin, or send Authorization: Bearer <LISTENER_TOKEN>",
      );
    }
    if (!COOKIE_METHODS.has(c.req.method)) {
      return deny(
        c,
        `a session cookie authorises reads only (GET, HEAD); ${c.req.method} needs ` +
          "Authorization: Bearer <LISTENER_TOKEN>",
      );
    }
    await next();
  };
}
