import assert from "node:assert/strict";
import { Hono } from "hono";
import { authRoutes, SIGNIN_BODY_LIMIT } from "./routes.ts";
import { SignInThrottle } from "./throttle.ts";
import { createSessions, SESSION_COOKIE } from "./session.ts";
import { formPost, jsonPost, parseSetCookie } from "./testing.ts";

const TOKEN = "s3cret-Token_1";
const T0 = Date.parse("2026-01-01T00:00:00Z");

function app(token: string | null = TOKEN) {
  const sessions = createSessions({ token: token ?? "unused", now: () => T0 });
  const a = new Hono();
  a.route("/", authRoutes(token === null ? {} : { token, sessions }));
  return { app: a, sessions };
}

Deno.test("POST /signin (form): 303 to /, an HttpOnly SameSite=Strict session cookie that is not the token", async () => {
  const { app: a, sessions } = app();
  const res = await a.request("/signin", formPost({ token: TOKEN }));
  assert.equal(res.status, 303);
  assert.equal(res.headers.get("location"), "/");
  assert.equal(res.headers.get("cache-control"), "no-store");
  const { pair, attrs } = parseSetCookie(res.headers.get("set-cookie"));
  const [name, value] = pair.split("=");
  assert.equal(name, SESSION_COOKIE);
  assert.ok(!value.includes(TOKEN), "the cookie is not the token");
  assert.equal(await sessions.verify(value), T0 / 1000 + 12 * 3600);
  assert.equal(attrs.get("max-age"), String(12 * 3600));
  assert.equal(attrs.get("path"), "/");
  assert.equal(attrs.get("samesite"), "Strict");
  assert.ok(attrs.has("httponly"));
  assert.ok(!attrs.has("secure"), "not Secure over http");
  // multipart/form-data (a form with enctype=multipart) works too.
  const fd = new FormData();
  fd.set("token", TOKEN);
  const multi = await a.request("/signin", { method: "POST", body: fd });
  assert.equal(multi.status, 303);
});

Deno.test("POST /signin (JSON): 200 with the expiry; Secure over https or behind an https proxy", async () => {
  const { app: a } = app();
  const res = await a.request("/signin", jsonPost({ token: TOKEN }));
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { ok: true, expires: new Date(T0 + 12 * 3600 * 1000).toISOString() });
  assert.ok(!parseSetCookie(res.headers.get("set-cookie")).attrs.has("secure"));
  const https = await a.request("https://listener.example/signin", jsonPost({ token: TOKEN }));
  assert.ok(parseSetCookie(https.headers.get("set-cookie")).attrs.has("secure"), "https URL");
  const proxied = await a.request(
    "/signin",
    jsonPost({ token: TOKEN }, { "x-forwarded-proto": "https, http" }),
  );
  assert.ok(parseSetCookie(proxied.headers.get("set-cookie")).attrs.has("secure"), "X-Forwarded-Proto");
});

Deno.test("POST /signin: a wrong token is 401 JSON, no cookie, the value not echoed", async () => {
  const { app: a } = app();
  for (const init of [jsonPost({ token: "guess-123" }), formPost({ token: "guess-123" })]) {
    const res = await a.request("/signin", init);
    assert.equal(res.status, 401);
    assert.equal(res.headers.get("set-cookie"), null);
    const text = await res.text();
    assert.ok(!text.includes("guess-123"));
    assert.match(JSON.parse(text).error, /wrong token/);
  }
  // A prefix of the token, the token with more: wrong too.
  for (const token of [TOKEN.slice(0, -1), `${TOKEN}x`]) {
    assert.equal((await a.request("/signin", jsonPost({ token }))).status, 401);
  }
});

Deno.test("POST /signin: bodies without a token say what is accepted", async () => {
  const { app: a } = app();
  const cases: [RequestInit, number, RegExp][] = [
    [jsonPost({}), 400, /field "token" is missing/],
    [jsonPost({ token: 42 }), 400, /"token" is not a string \(number\)/],
    [jsonPost({ token: "" }), 400, /"token" is empty/],
    [jsonPost([TOKEN]), 400, /not an object/],
    [
      { method: "POST", headers: { "content-type": "application/json" }, body: "{token" },
      400,
      /not valid JSON/,
    ],
    [formPost({ password: TOKEN }), 400, /field "token" is missing/],
    [{ method: "POST", headers: { "content-type": "text/plain" }, body: TOKEN }, 415, /"text\/plain" is not/],
    [{ method: "POST", body: new TextEncoder().encode(TOKEN) }, 415, /content type \(none\)/],
  ];
  for (const [init, status, error] of cases) {
    const res = await a.request("/signin", init);
    assert.equal(res.status, status, String(init.body));
    const body = await res.json();
    assert.equal(body.ok, false);
    assert.match(body.error, error);
    assert.match(body.error, /application\/x-www-form-urlencoded .* application\/json/);
    assert.ok(!body.error.includes(TOKEN), "the submitted value is not echoed");
    assert.equal(res.headers.get("set-cookie"), null);
  }
  const big = await a.request("/signin", jsonPost({ token: "x".repeat(SIGNIN_BODY_LIMIT) }));
  assert.equal(big.status, 413);
  assert.match((await big.json()).error, /larger than 8192 bytes/);
});

Deno.test("POST /signout clears the cookie; GET /session says whether the cookie is valid", async () => {
  const { app: a, sessions } = app();
  const out = await a.request("/signout", formPost({}));
  assert.equal(out.status, 303);
  assert.equal(out.headers.get("location"), "/");
  const { pair, attrs } = parseSetCookie(out.headers.get("set-cookie"));
  assert.equal(pair, `${SESSION_COOKIE}=`);
  assert.equal(attrs.get("max-age"), "0");
  assert.ok(attrs.has("httponly"));
  assert.equal(attrs.get("samesite"), "Strict");
  const json = await a.request("/signout", { method: "POST" });
  assert.deepEqual(await json.json(), { ok: true });
  assert.equal(parseSetCookie(json.headers.get("set-cookie")).attrs.get("max-age"), "0");

  const none = await a.request("/session");
  assert.deepEqual(await none.json(), { ok: true, token_required: true, session: null });
  const { value } = await sessions.issue();
  const signed = await a.request("/session", { headers: { cookie: `${SESSION_COOKIE}=${value}` } });
  assert.equal(signed.headers.get("cache-control"), "no-store");
  assert.deepEqual(await signed.json(), {
    ok: true,
    token_required: true,
    session: { expires: new Date(T0 + 12 * 3600 * 1000).toISOString() },
  });
  const bad = await a.request("/session", { headers: { cookie: `${SESSION_COOKIE}=${TOKEN}` } });
  assert.equal((await bad.json()).session, null);
});

Deno.test("without a token: /signin and /signout are 404 saying none is configured; /session says none is needed", async () => {
  const { app: a } = app(null);
  for (const path of ["/signin", "/signout"]) {
    const res = await a.request(path, jsonPost({ token: "x" }));
    assert.equal(res.status, 404, path);
    assert.match((await res.json()).error, /no token is configured \(LISTENER_TOKEN is unset\)/);
    assert.equal(res.headers.get("set-cookie"), null);
  }
  assert.deepEqual(await (await a.request("/session")).json(), {
    ok: true,
    token_required: false,
    session: null,
  });
});

Deno.test("POST /signin: after too many wrong tokens, 429 with Retry-After, even for the right one, until the window passes", async () => {
  const clock = { now: T0 };
  const sessions = createSessions({ token: TOKEN, now: () => clock.now });
  const a = new Hono();
  a.route(
    "/",
    authRoutes({ token: TOKEN, sessions, throttle: new SignInThrottle(3, 60_000), now: () => clock.now }),
  );
  for (let i = 0; i < 3; i++) {
    assert.equal((await a.request("/signin", jsonPost({ token: "nope" }))).status, 401);
  }
  const blocked = await a.request("/signin", jsonPost({ token: TOKEN }));
  assert.equal(blocked.status, 429);
  assert.equal(blocked.headers.get("retry-after"), "60");
  assert.equal(blocked.headers.get("set-cookie"), null);
  assert.match((await blocked.json()).error, /too many wrong tokens from unknown: try again in 60 s/);
  clock.now += 60_000;
  assert.equal((await a.request("/signin", jsonPost({ token: TOKEN }))).status, 200);
});
