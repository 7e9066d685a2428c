/**
 * Signing in to the live page end to end, in headless Chromium: the listener program itself
 * (listener/main.ts) with LISTENER_TOKEN. The page signs in through its form (a wrong token refused), its
 * session cookie is HttpOnly and SameSite=Strict, the live stream works through the cookie, signing out
 * forgets it, and the token shows in no URL the browser asked for and in nothing the listener printed.
 * Screenshots as ui_e2e_testing.ts says; skipped, saying why, without chromium or playwright-core.
 */
import assert from "node:assert/strict";
import type { BrowserContext } from "playwright-core";
import {
  launch,
  ListenerProcess,
  type PageDocument,
  portEvent,
  post,
  screenshots,
  skipped,
  timeline,
  WAIT,
  waitStatus,
} from "./ui_e2e_testing.ts";

declare const document: PageDocument;

const skip = skipped("ui_signin_e2e_test.ts");

Deno.test({
  name:
    "ports page with LISTENER_TOKEN: sign in, the stream works through an HttpOnly cookie, no token leaks",
  ignore: skip,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dataDir = await Deno.makeTempDir({ prefix: "portwatch-ui-e2e-token-" });
    const { shot, finish } = await screenshots();
    const token = `pw-${crypto.randomUUID()}`;
    let passed = false;
    let listener: ListenerProcess | undefined;
    let context: BrowserContext | undefined;
    try {
      listener = await ListenerProcess.start(dataDir, { LISTENER_TOKEN: token });
      const base = listener.url;
      const launched = await launch(dataDir);
      context = launched.context;
      const { page, errors } = launched;
      const urls: string[] = [];
      const consoleText: string[] = [];
      page.on("request", (r) => urls.push(r.url()));
      page.on("console", (m) => consoleText.push(m.text()));
      const sessionCookies = async () =>
        (await context!.cookies(base)).filter((c) => c.name === "portwatch_session");

      // 1. The page asks to sign in; no sign-out offered yet.
      await page.goto(`${base}/`);
      await waitStatus(page, "unauthorized");
      await page.waitForSelector("#signin:not([hidden])", WAIT);
      assert.equal(await page.isHidden("#signout"), true);
      assert.equal(await page.getAttribute("#signin-token", "type"), "password");
      await shot(page, "t1-signin");

      // 2. A wrong token is refused, and sets nothing.
      await page.fill("#signin-token", "not-the-token");
      await page.click("#signin-submit");
      await page.waitForSelector("#signin-error:not([hidden])", WAIT);
      assert.match(await page.textContent("#signin-error") ?? "", /Wrong token/);
      assert.equal(await page.getAttribute("#signin-token", "aria-invalid"), "true");
      assert.deepEqual(await sessionCookies(), []);
      assert.equal(await page.isVisible("#signin"), true);
      await shot(page, "t2-wrong-token");

      // 3. The right token (Enter in the field): signed in, live, the field emptied.
      await page.fill("#signin-token", token);
      await page.press("#signin-token", "Enter");
      await waitStatus(page, "live");
      await page.waitForSelector("#signin", { ...WAIT, state: "hidden" });
      await page.waitForSelector("#signout:not([hidden])", WAIT);
      assert.equal(await page.inputValue("#signin-token"), "");
      const [cookie] = await sessionCookies();
      assert.ok(cookie, "a portwatch_session cookie");
      assert.equal(cookie.httpOnly, true);
      assert.equal(cookie.sameSite, "Strict");
      assert.equal(cookie.path, "/");
      assert.equal(cookie.secure, false, "not Secure over plain http");
      assert.ok(!cookie.value.includes(token), "the cookie is not the token");
      const hours = (cookie.expires * 1000 - Date.now()) / 3_600_000;
      assert.ok(hours > 11.9 && hours <= 12, `expires in 12 h (${hours})`);
      assert.equal(await page.evaluate(() => document.cookie), "", "scripts cannot read it");

      // 4. The live stream works through the cookie: an open posted with the bearer header shows.
      await post(base, portEvent({ port: 7357, pids: [4242] }), token);
      await page.waitForSelector('#ports tr[data-port="7357"]', WAIT);
      assert.deepEqual((await timeline(page))[0], ["open", 7357]);
      assert.ok(urls.some((u) => new URL(u).pathname === "/events/stream"), "the page opened the stream");
      await shot(page, "t3-signed-in-live");

      // 5. A reload stays signed in; signing out forgets the cookie and asks again.
      await page.reload();
      await waitStatus(page, "live");
      await page.waitForSelector("#signout:not([hidden])", WAIT);
      await page.click("#signout button");
      await waitStatus(page, "unauthorized");
      await page.waitForSelector("#signin:not([hidden])", WAIT);
      assert.deepEqual(await sessionCookies(), []);
      await shot(page, "t4-signed-out");

      // 6. The token is in no URL the browser asked for, nothing on its console, nothing the listener printed.
      await context.close();
      context = undefined;
      await listener.stop();
      const printed = { stdout: listener.stdout, stderr: listener.stderr };
      listener = undefined;
      assert.ok(printed.stdout.includes('"listening"'), "the listener's output was read");
      for (const u of urls) assert.ok(!u.includes(token) && !u.includes(encodeURIComponent(token)), u);
      assert.ok(!consoleText.some((t) => t.includes(token)), "not on the page's console");
      assert.ok(!printed.stdout.includes(token), "not on the listener's stdout");
      assert.ok(!printed.stderr.includes(token), "not on the listener's stderr");
      assert.ok(!printed.stderr.includes("not-the-token"), "nor the wrong one");
      assert.deepEqual(errors.filter((e) => !/401|Failed to load resource/.test(e)), [], "no script error");
      passed = true;
    } finally {
      await context?.close().catch(() => {});
      await listener?.stop();
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
      await finish(passed);
    }
  },
});
