/** Helpers for the auth tests: sign in through `app.request()` and read the cookie it set. */
import assert from "node:assert/strict";
import type { Hono } from "hono";

/** A JSON POST. */
export const jsonPost = (body: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json", ...headers },
  body: JSON.stringify(body),
});

/** A form POST (application/x-www-form-urlencoded). */
export const formPost = (
  fields: Record<string, string>,
  headers: Record<string, string> = {},
): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
  body: new URLSearchParams(fields).toString(),
});

/** The Set-Cookie header's `name=value` part and its attributes, lower-cased names. */
export function parseSetCookie(header: string | null): { pair: string; attrs: Map<string, string> } {
  assert.ok(header, "a Set-Cookie header");
  const [pair, ...rest] = header.split(";").map((s) => s.trim());
  const attrs = new Map(rest.map((a) => {
    const i = a.indexOf("=");
    return i < 0 ? [a.toLowerCase(), ""] : [a.slice(0, i).toLowerCase(), a.slice(i + 1)];
  }));
  return { pair, attrs };
}

/** Sign in with JSON; the `Cookie` header value to send afterwards. */
export async function signIn(app: Hono, token: string): Promise<string> {
  const res = await app.request("/signin", jsonPost({ token }));
  assert.equal(res.status, 200, await res.clone().text());
  await res.body?.cancel();
  return parseSetCookie(res.headers.get("set-cookie")).pair;
}
