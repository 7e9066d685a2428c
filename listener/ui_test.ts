import assert from "node:assert/strict";
import { Hono } from "hono";
import { ASSET_MAX_AGE, CSP, UI_ASSETS, uiRoutes } from "./ui.ts";
import { createApp } from "./app.ts";
import { EventStore } from "./file/store.ts";
import { sampleEvent, storeOptions, withTempDir } from "./testing.ts";

const UI_DIR = new URL("./ui/", import.meta.url);
const file = (name: string) => Deno.readTextFile(new URL(name, UI_DIR));

/** A Hono app that mounts the page as the listener will: before the API and its token check. */
function pageApp(): Hono {
  const app = new Hono();
  app.route("/", uiRoutes());
  return app;
}

/** A served module with the versions of its imports taken out: the file as it is. */
const unversioned = (text: string) => text.replace(/(\.\/[A-Za-z0-9_-]+\.js)\?v=[0-9a-f]{8}"/g, '$1"');

/** The asset URLs the page names, e.g. /ui/app.js?v=1a2b3c4d. */
function assetUrls(html: string): string[] {
  return [...html.matchAll(/(?:src|href)="(\/ui\/[^"]+)"/g)].map((m) => m[1]);
}

Deno.test("GET /: the page, as HTML, never cached without asking, under a same-origin-only CSP", async () => {
  const res = await pageApp().request("/");
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/html; charset=utf-8");
  assert.equal(res.headers.get("cache-control"), "no-cache");
  assert.equal(res.headers.get("content-security-policy"), CSP);
  assert.match(CSP, /default-src 'self'/);
  assert.equal(res.headers.get("x-content-type-options"), "nosniff");
  assert.match(res.headers.get("etag") ?? "", /^"[0-9a-f]{8}"$/);
  const html = await res.text();
  assert.match(html, /^<!doctype html>/i);
  assert.match(html, /<html lang="en">/);
  // Landmarks, headings, the live region and the status indicator.
  for (const part of ["<header", "<nav", "<main", 'role="search"', 'aria-live="polite"', 'id="status"']) {
    assert.ok(html.includes(part), `index.html has ${part}`);
  }
  // The empty state tells a new user how to make an event.
  assert.ok(html.includes("deno task start"));
  assert.ok(html.includes("deno run -A testers/hold.ts tcp 5000"));
  assert.ok(html.includes("just test-http"));
  const head = await pageApp().request("/", { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get("content-type"), "text/html; charset=utf-8");
  assert.equal(await head.text(), "");
  // /index.html is the same page.
  const again = await pageApp().request("/index.html");
  assert.equal(again.status, 200);
  assert.equal(await again.text(), html);
});

Deno.test("GET /: every form control has a label, and nothing inline that the CSP would block", async () => {
  const html = await (await pageApp().request("/")).text();
  const ids = [...html.matchAll(/<(?:input|select)\b[^>]*\bid="([^"]+)"/g)].map((m) => m[1]);
  assert.deepEqual(ids, ["f-container", "f-port", "f-proto", "f-unexpected", "signin-token"]);
  for (const id of ids) assert.ok(html.includes(`<label for="${id}">`), `a label for #${id}`);
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, "no inline script");
  assert.doesNotMatch(html, /<style\b/, "no inline style element");
  assert.doesNotMatch(html, /\sstyle="/, "no style attributes");
  assert.doesNotMatch(html, /\son[a-z]+="/, "no inline event handlers");
});

Deno.test("GET /: the sign-in posts the token in a body, never a URL; nothing keeps it in the browser", async () => {
  const html = await (await pageApp().request("/")).text();
  // Even without script, the forms post (a form without method would GET, putting the token in the URL).
  assert.match(html, /<form id="signin-form" method="post" action="\/signin">/);
  assert.match(html, /<input\s+id="signin-token"\s+name="token"\s+type="password"/);
  assert.match(html, /<form id="signout" class="signout" method="post" action="\/signout" hidden>/);
  assert.match(html, /<input id="f-unexpected" name="unexpected" type="checkbox" value="1">/);
  const status = await file("status.js");
  assert.ok(status.includes('fetch("/signin"'), "status.js posts to /signin");
  assert.ok(status.includes("body: JSON.stringify({ token })"), "the token goes in the body");
  assert.ok(status.includes('input.value = "";'), "the field is emptied once signed in");
  for (const name of Object.keys(UI_ASSETS).filter((n) => n.endsWith(".js"))) {
    const js = await file(name);
    assert.doesNotMatch(
      js,
      /localStorage|sessionStorage|indexedDB|document\.cookie/,
      `${name} stores nothing`,
    );
    assert.doesNotMatch(js, /console\.\w+\([^)]*token/i, `${name} logs no token`);
  }
});

Deno.test("GET /ui/*: assets with their content types, a short cache, ETag and 304", async () => {
  const app = pageApp();
  const cases = Object.entries(UI_ASSETS).map(([name, type]) => [`/ui/${name}`, type, name]);
  assert.ok(cases.length >= 3, "the modules and the style sheet");
  for (const [path, type, name] of cases) {
    const res = await app.request(path);
    assert.equal(res.status, 200, path);
    assert.equal(res.headers.get("content-type"), type, path);
    assert.equal(res.headers.get("cache-control"), `public, max-age=${ASSET_MAX_AGE}`, path);
    assert.equal(res.headers.get("x-content-type-options"), "nosniff");
    assert.equal(
      unversioned(await res.text()),
      await file(name),
      `${path} is listener/ui/${name} as is (but for its imports' versions)`,
    );
    const etag = res.headers.get("etag");
    assert.ok(etag, `${path} has an ETag`);
    const cached = await app.request(path, { headers: { "If-None-Match": etag } });
    assert.equal(cached.status, 304, `${path} with a matching If-None-Match`);
    assert.equal(await cached.text(), "");
    assert.equal(cached.headers.get("cache-control"), `public, max-age=${ASSET_MAX_AGE}`);
    const stale = await app.request(path, { headers: { "If-None-Match": '"00000000"' } });
    assert.equal(stale.status, 200);
    await stale.body?.cancel();
  }
  const page = await app.request("/");
  const etag = page.headers.get("etag")!;
  await page.body?.cancel();
  const revalidated = await app.request("/", { headers: { "If-None-Match": `W/${etag}` } });
  assert.equal(revalidated.status, 304);
});

Deno.test("GET /: the page names its assets with a version that follows their content", async () => {
  const app = pageApp();
  const html = await (await app.request("/")).text();
  const urls = assetUrls(html);
  assert.deepEqual(urls.map((u) => u.replace(/\?v=[0-9a-f]{8}$/, "")).sort(), [
    "/ui/app.js",
    "/ui/style.css",
  ]);
  for (const url of urls) {
    const res = await app.request(url);
    assert.equal(res.status, 200, url);
    assert.equal(`"${new URL(url, "http://x").searchParams.get("v")}"`, res.headers.get("etag"), url);
    await res.body?.cancel();
  }
});

Deno.test("GET /ui/*: an unknown asset or a path outside listener/ui/ is a JSON 404", async () => {
  const app = pageApp();
  for (const path of ["/ui/nope.js", "/ui/..%2Fui.ts", "/ui/%2e%2e%2fapp.ts", "/ui/index.html"]) {
    const res = await app.request(path);
    assert.equal(res.status, 404, path);
    const body = await res.json();
    assert.equal(body.ok, false);
  }
  const listed = await (await app.request("/ui/nope.js")).json();
  assert.match(listed.error, /\/ui\/app\.js, .*\/ui\/ports_rule\.js, .*\/ui\/style\.css/);
});

Deno.test("the page loads nothing from the internet", async () => {
  for (const name of ["index.html", ...Object.keys(UI_ASSETS)]) {
    const text = await file(name);
    assert.doesNotMatch(text, /\b(?:https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}/i, `${name} names no outside URL`);
  }
  assert.doesNotMatch(await file("style.css"), /@import|url\(/i, "style.css pulls in no other file");
});

Deno.test("GET /ui/*.js: every module is served, and names the modules it imports with their version", async () => {
  const app = pageApp();
  const onDisk: string[] = [];
  for await (const e of Deno.readDir(UI_DIR)) {
    if (e.isFile && e.name.endsWith(".js") && !e.name.endsWith("_test.js")) onDisk.push(e.name);
  }
  const modules = Object.keys(UI_ASSETS).filter((n) => n.endsWith(".js"));
  assert.deepEqual(modules.sort(), onDisk.sort(), "UI_ASSETS names every module in listener/ui/");
  const etags = new Map<string, string>();
  const bodies = new Map<string, string>();
  for (const name of modules) {
    const res = await app.request(`/ui/${name}`);
    etags.set(name, res.headers.get("etag")!);
    bodies.set(name, await res.text());
  }
  const imported = new Set<string>();
  for (const [name, body] of bodies) {
    for (const m of body.matchAll(/\bfrom\s*"\.\/([A-Za-z0-9_-]+\.js)(\?v=[0-9a-f]{8})?"/g)) {
      assert.ok(m[2], `${name} imports ./${m[1]} with a version`);
      assert.equal(`"${m[2].slice(3)}"`, etags.get(m[1]), `${name}: ./${m[1]} at its current version`);
      imported.add(m[1]);
    }
  }
  // Every module but the entry point is imported by another: none is served for nothing.
  assert.deepEqual(modules.filter((n) => n !== "app.js" && !imported.has(n)), []);
  assert.ok(imported.has("ports_rule.js"), "the page applies the listener's own rule");
});

Deno.test("app.js asks the listener only for routes it serves, and resumes the stream by id", async () => {
  const js = await file("app.js");
  assert.ok(js.includes("`/events?limit=${MAX_EVENTS}`"));
  assert.ok(js.includes('getJSON("/ports")'));
  assert.ok(js.includes('new URL("/events/stream"'));
  assert.ok(js.includes('searchParams.set("last_event_id"'));
  assert.match(js, /const MAX_EVENTS = 200;/);
});

Deno.test("mounted beside the API: the page loads without the token, the API still asks for it", async () => {
  await withTempDir(async (dir) => {
    const { store } = await EventStore.open(storeOptions(dir));
    try {
      const app = new Hono();
      app.route("/", uiRoutes());
      app.route("/", createApp(store, { bodyLimit: 1 << 20, token: "s3cret", heartbeatMs: 200 }));
      const page = await app.request("/");
      assert.equal(page.status, 200);
      await page.body?.cancel();
      const js = await app.request("/ui/app.js");
      assert.equal(js.status, 200);
      await js.body?.cancel();
      // What the page reads answers 401 without the token: the page shows its sign-in (see app.js failed()).
      for (const path of ["/ports", "/events?limit=200", "/events/stream"]) {
        const res = await app.request(path);
        assert.equal(res.status, 401, path);
        await res.body?.cancel();
      }
      // Signed in, the page's reads go with the session cookie.
      const signin = await app.request("/signin", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: "token=s3cret",
      });
      assert.equal(signin.status, 303);
      const cookie = signin.headers.get("set-cookie")!.split(";")[0];
      for (const path of ["/ports", "/events?limit=200", "/session"]) {
        const res = await app.request(path, { headers: { cookie } });
        assert.equal(res.status, 200, path);
        await res.body?.cancel();
      }
      const auth = { headers: { authorization: "Bearer s3cret" } };
      const ev = sampleEvent({ port: 5123 });
      const ingest = await app.request("/ingest", {
        method: "POST",
        headers: { ...auth.headers, "content-type": "application/json" },
        body: JSON.stringify(ev),
      });
      assert.equal(ingest.status, 200);
      await ingest.body?.cancel();
      const ports = await (await app.request("/ports", auth)).json();
      assert.deepEqual(ports.ports.map((p: { port: number }) => p.port), [5123]);
      const missing = await app.request("/nope", auth);
      assert.equal(missing.status, 404);
      await missing.body?.cancel();
    } finally {
      await store.close();
    }
  });
});
