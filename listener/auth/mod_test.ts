import assert from "node:assert/strict";
import { sampleEvent, withApp } from "../testing.ts";
import { jsonPost, parseSetCookie, signIn } from "./testing.ts";
import { listenerAuth, SESSION_COOKIE } from "./mod.ts";

const TOKEN = "s3cret";

Deno.test("listener with a token: the page's cookie reads /ports, /events and the stream; writes need the bearer", async () => {
  await withApp(async ({ app }) => {
    const cookie = await signIn(app, TOKEN);
    assert.match(cookie, new RegExp(`^${SESSION_COOKIE}=\\d+\\.`));
    // A write with the cookie only is refused, and stores nothing.
    const refused = await app.request("/ingest", jsonPost(sampleEvent({ port: 6001 }), { cookie }));
    assert.equal(refused.status, 401);
    assert.match((await refused.json()).error, /POST needs Authorization: Bearer <LISTENER_TOKEN>/);
    const stored = await app.request(
      "/ingest",
      jsonPost(sampleEvent({ port: 6002 }), { authorization: `Bearer ${TOKEN}` }),
    );
    assert.equal(stored.status, 200);
    await stored.body?.cancel();
    const ports = await app.request("/ports", { headers: { cookie } });
    assert.equal(ports.status, 200);
    assert.deepEqual((await ports.json()).ports.map((p: { port: number }) => p.port), [6002]);
    const events = await app.request("/events?limit=5", { headers: { cookie } });
    assert.equal(events.status, 200);
    assert.equal((await events.json()).count, 1);
    const stream = await app.request("/events/stream", { headers: { cookie } });
    assert.equal(stream.status, 200);
    assert.match(stream.headers.get("content-type") ?? "", /^text\/event-stream/);
    await stream.body?.cancel();
    const session = await (await app.request("/session", { headers: { cookie } })).json();
    assert.equal(session.token_required, true);
    assert.ok(session.session?.expires);
    // Signed out: the browser forgets the cookie (Max-Age=0).
    const out = await app.request("/signout", { method: "POST", headers: { cookie } });
    assert.equal(parseSetCookie(out.headers.get("set-cookie")).attrs.get("max-age"), "0");
    await out.body?.cancel();
    // No cookie: what the page reads answers 401 as before; /healthz and the page do not.
    for (const path of ["/ports", "/events", "/events/stream", "/metrics"]) {
      const res = await app.request(path);
      assert.equal(res.status, 401, path);
      assert.match((await res.json()).error, /missing Authorization/);
    }
    assert.equal((await app.request("/healthz")).status, 200);
  }, { token: TOKEN });
});

Deno.test("listener without a token: nothing changes, /signin says no token is configured", async () => {
  await withApp(async ({ app }) => {
    const res = await app.request("/signin", jsonPost({ token: "anything" }));
    assert.equal(res.status, 404);
    assert.match((await res.json()).error, /no token is configured/);
    const ingest = await app.request("/ingest", jsonPost(sampleEvent()));
    assert.equal(ingest.status, 200);
    await ingest.body?.cancel();
    assert.equal((await app.request("/ports")).status, 200);
  });
  assert.equal(listenerAuth(undefined).middleware, undefined);
  assert.equal(listenerAuth("").middleware, undefined, "an empty token is no token, as before");
  assert.ok(listenerAuth(TOKEN).middleware);
});
