import assert from "node:assert/strict";
import { Hono } from "hono";
import { sessionOrBearerAuth } from "./middleware.ts";
import { createSessions, SESSION_COOKIE } from "./session.ts";
import { parseSetCookie } from "./testing.ts";

const TOKEN = "s3cret";

/** A clock the test moves, sessions over it, and an app with a read and writes behind the middleware. */
function setup() {
  let t = Date.parse("2026-01-01T00:00:00Z");
  const sessions = createSessions({ token: TOKEN, maxAgeSeconds: 60, now: () => t });
  const app = new Hono();
  app.use("*", sessionOrBearerAuth({ token: TOKEN, sessions }));
  app.get("/data", (c) => c.json({ ok: true }));
  app.post("/data", (c) => c.json({ ok: true }));
  app.delete("/data", (c) => c.json({ ok: true }));
  return { app, sessions, advance: (ms: number) => (t += ms) };
}

const status = async (res: Response) => {
  await res.body?.cancel();
  return res.status;
};

Deno.test("middleware: the bearer header works and fails exactly as before", async () => {
  const { app } = setup();
  const auth = { authorization: `Bearer ${TOKEN}` };
  for (const method of ["GET", "POST", "DELETE"]) {
    assert.equal(await status(await app.request("/data", { method, headers: auth })), 200, method);
  }
  const missing = await app.request("/data");
  assert.equal(missing.status, 401);
  assert.equal(missing.headers.get("www-authenticate"), 'Bearer realm=""');
  assert.deepEqual(await missing.json(), {
    ok: false,
    error: "missing Authorization: Bearer <LISTENER_TOKEN> header (/data)",
  });
  const wrong = await app.request("/data", { headers: { authorization: "Bearer nope" } });
  assert.equal(wrong.status, 401);
  assert.deepEqual(await wrong.json(), { ok: false, error: "wrong bearer token (/data)" });
  const malformed = await app.request("/data", { headers: { authorization: "Basic abc" } });
  assert.equal(malformed.status, 400);
  assert.match((await malformed.json()).error, /not of the form Bearer <token> \(\/data\)/);
});

Deno.test("middleware: a session cookie authorises GET and HEAD, never a write", async () => {
  const { app, sessions } = setup();
  const cookie = `${SESSION_COOKIE}=${(await sessions.issue()).value}`;
  assert.equal(await status(await app.request("/data", { headers: { cookie } })), 200);
  assert.equal(await status(await app.request("/data", { method: "HEAD", headers: { cookie } })), 200);
  for (const method of ["POST", "DELETE", "PUT", "PATCH"]) {
    const res = await app.request("/data", { method, headers: { cookie } });
    assert.equal(res.status, 401, method);
    const error = (await res.json()).error;
    assert.match(error, new RegExp(`reads only \\(GET, HEAD\\); ${method} needs Authorization: Bearer`));
    assert.equal(res.headers.get("set-cookie"), null, "a valid cookie is kept");
  }
  // With both, the header decides: a wrong header is refused even beside a valid cookie.
  const both = await app.request("/data", { headers: { cookie, authorization: "Bearer nope" } });
  assert.equal(both.status, 401);
  assert.match((await both.json()).error, /wrong bearer token/);
  // The cookie among others.
  const many = await app.request("/data", { headers: { cookie: `a=1; ${cookie}; b=2` } });
  assert.equal(await status(many), 200);
});

Deno.test("middleware: an expired, forged or old-token cookie is 401 and cleared", async () => {
  const { app, sessions, advance } = setup();
  const value = (await sessions.issue()).value;
  const older = createSessions({ token: "old-token", maxAgeSeconds: 60 });
  const forged = `${value.split(".")[0]}.${"A".repeat(43)}`;
  for (const bad of [forged, (await older.issue()).value, TOKEN, "junk"]) {
    const res = await app.request("/data", { headers: { cookie: `${SESSION_COOKIE}=${bad}` } });
    assert.equal(res.status, 401, bad);
    assert.match(
      (await res.json()).error,
      /session cookie has expired or is no longer valid .*POST \/signin/,
    );
    const cleared = parseSetCookie(res.headers.get("set-cookie"));
    assert.equal(cleared.pair, `${SESSION_COOKIE}=`);
    assert.equal(cleared.attrs.get("max-age"), "0");
  }
  advance(60_000);
  const expired = await app.request("/data", { headers: { cookie: `${SESSION_COOKIE}=${value}` } });
  assert.equal(expired.status, 401);
  await expired.body?.cancel();
});
