/**
 * The listener's token (LISTENER_TOKEN) for clients and for the live page: the bearer header, or the page's
 * session cookie for reads, given by `POST /signin` (routes.ts, middleware.ts, session.ts, cookie.ts).
 * @module
 */
import type { Hono, MiddlewareHandler } from "hono";
import { authRoutes } from "./routes.ts";
import { sessionOrBearerAuth } from "./middleware.ts";
import { createSessions, type SessionOptions } from "./session.ts";

export { authRoutes, type AuthRoutesOptions, SIGNIN_BODY_LIMIT } from "./routes.ts";
export { type AuthOptions, COOKIE_METHODS, sessionOrBearerAuth } from "./middleware.ts";
export { clearSessionCookie, isHttps, setSessionCookie } from "./cookie.ts";
export {
  base64url,
  createSessions,
  type IssuedSession,
  sameSecret,
  SESSION_COOKIE,
  SESSION_MAX_AGE,
  type SessionOptions,
  type Sessions,
} from "./session.ts";

/** The listener's authorisation: routes to mount first, then the middleware (none when the listener is open). */
export interface ListenerAuth {
  /** `POST /signin`, `POST /signout`, `GET /session`: mount before the middleware. */
  routes: Hono;
  /** The token check for every route after it; undefined without a token. */
  middleware?: MiddlewareHandler;
}

/**
 * Everything the app needs for `token`, sharing one set of sessions (one imported HMAC key). Without a token,
 * the routes say no token is configured and there is no middleware: nothing else changes.
 * @example
 * ```ts
 * const auth = listenerAuth(Deno.env.get("LISTENER_TOKEN"));
 * app.route("/", auth.routes);
 * if (auth.middleware) app.use("*", auth.middleware);
 * ```
 */
export function listenerAuth(
  token: string | undefined,
  session: Omit<SessionOptions, "token"> = {},
): ListenerAuth {
  if (!token) return { routes: authRoutes({}) };
  const sessions = createSessions({ ...session, token });
  return { routes: authRoutes({ token, sessions }), middleware: sessionOrBearerAuth({ token, sessions }) };
}
