/**
 * The live page's sign-in when LISTENER_TOKEN is set (mounted before the token check; see middleware.ts):
 *
 * - `POST /signin` with the token, as a form (`application/x-www-form-urlencoded` or `multipart/form-data`,
 *   field `token`) or as JSON (`{"token": "..."}`). The token is compared in constant time. Right: the
 *   session cookie is set (session.ts, cookie.ts); a form post is answered `303` to `/`, a JSON post
 *   `{"ok":true,"expires":"<ISO time>"}`. Wrong: `401` JSON, no cookie. The submitted value is neither logged
 *   nor echoed.
 * - `POST /signout`: the cookie is cleared (`303` to `/` for a form post, else `{"ok":true}`). It needs no
 *   authorisation: it only makes the caller's own browser forget its cookie, and works with an expired one.
 * - `GET /session`: `{"ok":true,"token_required":bool,"session":{"expires":"<ISO time>"}|null}`, whether this
 *   request carries a valid session cookie (the page shows "Sign out" then; the cookie is HttpOnly, so the
 *   page cannot read it).
 *
 * Wrong tokens are limited per client address (throttle.ts: 10 per 5 minutes, then `429` with `Retry-After`).
 *
 * Without a token (the listener is open) `POST /signin` and `POST /signout` answer `404` JSON saying no token
 * is configured, and `GET /session` says `token_required: false`.
 * @module
 */
import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { getCookie } from "hono/cookie";
import { sameSecret, SESSION_COOKIE, type Sessions } from "./session.ts";
import { clearSessionCookie, setSessionCookie } from "./cookie.ts";
import { SignInThrottle } from "./throttle.ts";
import { getConnInfo } from "hono/deno";

/** Largest /signin body, bytes: a token and a form's overhead. */
export const SIGNIN_BODY_LIMIT = 8 * 1024;

/** What {@link authRoutes} needs. */
export interface AuthRoutesOptions {
  /** The listener's token (LISTENER_TOKEN); undefined when the listener is open. */
  token?: string;
  /** The sessions made with that token (shared with the middleware); required with a token. */
  sessions?: Sessions;
  /** Wrong tokens per client address (default: 10 per 5 minutes, then 429). */
  throttle?: SignInThrottle;
  /** The clock (ms), for tests. */
  now?: () => number;
}

/** The client's address (the TCP peer; "unknown" without one, e.g. app.request() in tests). */
function clientAddress(c: Context): string {
  try {
    return getConnInfo(c).remote.address ?? "unknown";
  } catch {
    return "unknown";
  }
}

const FORM = /^(application\/x-www-form-urlencoded|multipart\/form-data)\b/i;
const JSON_TYPE = /^application\/([a-z0-9.+-]*\+)?json\b/i;

const ACCEPTED = `send application/x-www-form-urlencoded (token=<LISTENER_TOKEN>) or application/json ` +
  `({"token": "<LISTENER_TOKEN>"})`;

/** A client error about the sign-in request itself (never quoting the submitted value). */
class SignInError extends Error {
  constructor(readonly status: 400 | 415, message: string) {
    super(message);
  }
}

/** The token submitted to /signin, from a form or JSON; throws {@link SignInError} on a body that has none. */
async function submittedToken(c: Context): Promise<string> {
  const type = c.req.header("content-type") ?? "";
  let value: unknown;
  if (FORM.test(type)) {
    let form;
    try {
      form = await c.req.parseBody();
    } catch (e) {
      throw new SignInError(400, `the form body cannot be read (${(e as Error).message}); ${ACCEPTED}`);
    }
    value = form.token;
  } else if (JSON_TYPE.test(type)) {
    let body: unknown;
    try {
      body = JSON.parse(await c.req.text());
    } catch {
      throw new SignInError(400, `the body is not valid JSON; ${ACCEPTED}`);
    }
    if (body === null || typeof body !== "object" || Array.isArray(body)) {
      throw new SignInError(400, `the JSON body is not an object; ${ACCEPTED}`);
    }
    value = (body as Record<string, unknown>).token;
  } else {
    throw new SignInError(
      415,
      `content type ${
        type ? `"${type.split(";")[0]}"` : "(none)"
      } is not accepted by POST /signin; ${ACCEPTED}`,
    );
  }
  if (value === undefined) throw new SignInError(400, `the field "token" is missing; ${ACCEPTED}`);
  if (typeof value !== "string") {
    throw new SignInError(400, `the field "token" is not a string (${typeof value}); ${ACCEPTED}`);
  }
  if (value === "") throw new SignInError(400, `the field "token" is empty; ${ACCEPTED}`);
  return value;
}

/** True when the request is a form post (answered with a redirect, as a browser's form expects). */
const isForm = (c: Context) => FORM.test(c.req.header("content-type") ?? "");

/**
 * The sign-in routes: `POST /signin`, `POST /signout`, `GET /session` (see the module's text). Mount them
 * before {@link import("./middleware.ts").sessionOrBearerAuth}.
 * @example
 * ```ts
 * const sessions = createSessions({ token: "s3cret" });
 * app.route("/", authRoutes({ token: "s3cret", sessions }));
 * const res = await app.request("/signin", {
 *   method: "POST",
 *   headers: { "content-type": "application/json" },
 *   body: JSON.stringify({ token: "s3cret" }),
 * }); // 200, Set-Cookie: portwatch_session=...; Max-Age=43200; Path=/; HttpOnly; SameSite=Strict
 * ```
 */
export function authRoutes(options: AuthRoutesOptions): Hono {
  const { token, sessions } = options;
  const throttle = options.throttle ?? new SignInThrottle();
  const now = options.now ?? Date.now;
  if (token !== undefined && !sessions) throw new Error("authRoutes: a token needs its sessions");
  const app = new Hono();
  const noToken = (c: Context) =>
    c.json({
      ok: false,
      error: `no token is configured (LISTENER_TOKEN is unset): the listener is open and needs no sign-in ` +
        `(${c.req.method} ${c.req.path})`,
    }, 404);

  app.get("/session", async (c) => {
    c.header("Cache-Control", "no-store");
    const expires = sessions ? await sessions.verify(getCookie(c, SESSION_COOKIE)) : null;
    return c.json({
      ok: true,
      token_required: token !== undefined,
      session: expires === null ? null : { expires: new Date(expires * 1000).toISOString() },
    });
  });

  app.post(
    "/signin",
    bodyLimit({
      maxSize: SIGNIN_BODY_LIMIT,
      onError: (c) =>
        c.json({ ok: false, error: `the sign-in body is larger than ${SIGNIN_BODY_LIMIT} bytes` }, 413),
    }),
    async (c) => {
      if (token === undefined || !sessions) return noToken(c);
      c.header("Cache-Control", "no-store");
      const address = clientAddress(c);
      const wait = throttle.waitMs(address, now());
      if (wait > 0) {
        c.header("Retry-After", String(Math.ceil(wait / 1000)));
        return c.json({
          ok: false,
          error: `too many wrong tokens from ${address}: try again in ${Math.ceil(wait / 1000)} s`,
        }, 429);
      }
      let given: string;
      try {
        given = await submittedToken(c);
      } catch (e) {
        if (e instanceof SignInError) return c.json({ ok: false, error: e.message }, e.status);
        throw e;
      }
      if (!(await sameSecret(given, token))) {
        throttle.failed(address, now());
        return c.json({ ok: false, error: "wrong token: not signed in (POST /signin)" }, 401);
      }
      throttle.succeeded(address);
      const session = await sessions.issue();
      setSessionCookie(c, session);
      if (isForm(c)) return c.redirect("/", 303);
      return c.json({ ok: true, expires: new Date(session.expires * 1000).toISOString() });
    },
  );

  app.post("/signout", (c) => {
    if (token === undefined) return noToken(c);
    c.header("Cache-Control", "no-store");
    clearSessionCookie(c);
    if (isForm(c)) return c.redirect("/", 303);
    return c.json({ ok: true });
  });
  return app;
}
