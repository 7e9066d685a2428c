/**
 * The live ports page end to end, in headless Chromium (Debian's `chromium`, driven by npm playwright-core):
 * a real HTTP server with the listener's API and the page, a real port held by testers/hold.ts, its open and
 * close posted to /ingest as a watcher does, and a change of a port's holders; the page must show them live
 * (a change updates the port's row and reads "holders 4242 → 4243" in the timeline), keep its filters across
 * a reload, resume the stream after the listener restarts without missing or doubling an event, and ask to
 * sign in when the listener wants a token. Signing in: ui_signin_e2e_test.ts; the port policy's marks:
 * ui_policy_e2e_test.ts; what they share: ui_e2e_testing.ts. Screenshots of every step go to
 * $PORTWATCH_ARTIFACTS, kept, or else to a temp folder (never the repository) that is kept only when the test
 * fails; their paths are printed. Skipped, saying why, without chromium or playwright-core.
 */
import assert from "node:assert/strict";
import { Hono } from "hono";
import type { BrowserContext } from "playwright-core";
import { createApp } from "./app.ts";
import { EventStore } from "./file/store.ts";
import { storeOptions } from "./testing.ts";
import { toRecords } from "./validate.ts";
import { uiRoutes } from "./ui.ts";
import {
  HOST,
  launch,
  type PageDocument,
  type PageStyle,
  portEvent,
  post,
  screenshots,
  shownPorts,
  skipped,
  timeline,
  WAIT,
  waitAnnounced,
  waitRows,
  waitStatus,
} from "./ui_e2e_testing.ts";

declare const document: PageDocument;
declare function getComputedStyle(element: unknown): PageStyle;

const HOLD = new URL("../testers/hold.ts", import.meta.url).pathname;
const skip = skipped("ui_e2e_test.ts");

/** The listener's API and the page on 127.0.0.1, as the integrated listener will serve them. */
class TestServer {
  #server?: Deno.HttpServer<Deno.NetAddr>;
  #closing?: AbortController;
  port = 0;

  constructor(readonly store: EventStore, readonly token?: string) {}

  start(port = this.port): void {
    this.#closing = new AbortController();
    const app = new Hono();
    app.route("/", uiRoutes());
    app.route(
      "/",
      createApp(this.store, {
        bodyLimit: 1 << 20,
        token: this.token,
        heartbeatMs: 1_000,
        shutdown: this.#closing.signal,
      }),
    );
    this.#server = Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, app.fetch);
    this.port = this.#server.addr.port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    if (!this.#server) return;
    this.#closing?.abort();
    await this.#server.shutdown();
    this.#server = undefined;
  }
}

/** testers/hold.ts holding a real TCP port on 127.0.0.1 (any free one). */
async function holdPort(): Promise<
  { child: Deno.ChildProcess; port: number; pid: number; stop(): Promise<void> }
> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", HOLD, "tcp", "0", "--host", "127.0.0.1", "--seconds", "60"],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    await child.status;
    await reader.cancel().catch(() => {});
  };
  let buf = "";
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  try {
    while (!buf.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error("hold.ts exited before its ready line");
      buf += value;
    }
    const ready = JSON.parse(buf.slice(0, buf.indexOf("\n")));
    assert.equal(ready.ready, true);
    return { child, port: ready.port, pid: ready.pid, stop };
  } catch (e) {
    await stop();
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

/** The process fields a watcher reads from /proc. */
function processOf(pid: number): { pid: number; comm: string; cmdline: string; uid: number } {
  const comm = Deno.readTextFileSync(`/proc/${pid}/comm`).trim();
  const cmdline = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").filter((s) => s !== "").join(" ");
  const uid = Number(/^Uid:\s+(\d+)/m.exec(Deno.readTextFileSync(`/proc/${pid}/status`))?.[1] ?? 0);
  return { pid, comm, cmdline, uid };
}

Deno.test({
  name: "ports page: a real port's open and close show live; filters survive reload; resume after restart",
  ignore: skip,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dataDir = await Deno.makeTempDir({ prefix: "portwatch-ui-e2e-data-" });
    const { shot, finish } = await screenshots();
    let passed = false;
    const { store } = await EventStore.open(storeOptions(dataDir));
    const server = new TestServer(store);
    const tokenServer = new TestServer(store, "s3cret");
    let held: Awaited<ReturnType<typeof holdPort>> | undefined;
    let context: BrowserContext | undefined;
    try {
      server.start(0);
      const launched = await launch(dataDir);
      context = launched.context;
      const { page, errors: pageErrors } = launched;
      // Nothing may leave the machine: every request must go to the test server.
      const outside: string[] = [];
      context.on("request", (r) => {
        if (
          !r.url().startsWith(server.url) && !r.url().startsWith(tokenServer.url) &&
          !r.url().startsWith("data:")
        ) {
          outside.push(r.url());
        }
      });

      // 1. An empty log: the page says how to make an event.
      await page.goto(`${server.url}/`);
      await waitStatus(page, "live");
      await page.waitForSelector("#empty:not([hidden])", WAIT);
      const emptyText = await page.textContent("#empty");
      assert.match(emptyText ?? "", /deno task start/);
      assert.match(emptyText ?? "", /testers\/hold\.ts tcp 5000/);
      assert.equal(await page.textContent("#status-text"), "Live");
      await shot(page, "01-empty");

      // 2. A container's port arrives live (the stream was opened with no id to resume from).
      await post(
        server.url,
        portEvent({
          port: 8080,
          container_id: "3f4e1c2b9a7d0011",
          container_name: "web",
          addrs: ["0.0.0.0", "::"],
          pids: [4242],
          process: { pid: 4242, comm: "node", cmdline: "node server.js --port 8080", uid: 1000 },
        }),
      );
      await page.waitForSelector('#ports table[data-container="web"] tr[data-port="8080"]', WAIT);
      assert.equal(await page.isHidden("#empty"), true);

      // 3. A real port: hold.ts holds it, its open is posted as a watcher would.
      held = await holdPort();
      const proc = processOf(held.pid);
      await post(server.url, portEvent({ port: held.port, pids: [held.pid], process: proc }));
      const row = `#ports tr[data-port="${held.port}"]`;
      await page.waitForSelector(row, WAIT);
      const hostTable = page.locator("#ports table", { has: page.locator(`tr[data-port="${held.port}"]`) });
      assert.match(await hostTable.locator("caption").textContent() ?? "", new RegExp(`host on ${HOST}`));
      const cells = await page.$$eval(
        `${row} > *`,
        (cs) => cs.map((c) => [c.tagName, c.getAttribute("scope"), (c.textContent ?? "").trim()]),
      );
      assert.deepEqual(cells.slice(0, 4), [
        ["TH", "row", String(held.port)],
        ["TD", null, "tcp"],
        ["TD", null, "127.0.0.1"],
        ["TD", null, String(held.pid)],
      ]);
      assert.match(cells[4][2], /^deno .*hold\.ts tcp 0/);
      assert.match(cells[5][2], /now|second/);
      const since = await page.$eval(
        `${row} time`,
        (t) => [t.getAttribute("datetime"), t.getAttribute("title")],
      );
      assert.ok(since[0] && !Number.isNaN(Date.parse(since[0])), "since has a machine-readable datetime");
      assert.ok(since[1] && since[1].length > 10, "since has the absolute time as its title");
      assert.deepEqual((await timeline(page))[0], ["open", held.port]);
      await waitAnnounced(page, `Port ${held.port}/tcp opened`);
      // Grouped: the host's ports first, then the container's.
      assert.deepEqual(await shownPorts(page), [held.port, 8080]);
      await shot(page, "02-open");

      // 3b. The container's port changes hands (a forked child keeps the socket, the parent closes its copy)
      // and drops an address: the row shows the new holders and addresses, still open since the same time.
      const webRow = '#ports tr[data-port="8080"]';
      const sinceBefore = await page.getAttribute(`${webRow} time`, "datetime");
      await post(
        server.url,
        portEvent({
          event: "change",
          port: 8080,
          container_id: "3f4e1c2b9a7d0011",
          container_name: "web",
          addrs: ["0.0.0.0"],
          last_addrs: ["0.0.0.0", "::"],
          pids: [4243],
          last_pids: [4242],
          process: { pid: 4243, comm: "node", cmdline: "node server.js --port 8080", uid: 1000 },
        }),
      );
      await page.waitForFunction(
        (sel) => document.querySelector(sel)?.textContent?.trim() === "4243",
        `${webRow} .c-pids`,
        WAIT,
      );
      assert.equal((await page.textContent(`${webRow} .c-addrs`))?.trim(), "0.0.0.0");
      assert.equal(await page.getAttribute(`${webRow} time`, "datetime"), sinceBefore, "since is kept");
      assert.deepEqual(await shownPorts(page), [held.port, 8080], "the port stays open");
      assert.deepEqual((await timeline(page))[0], ["change", 8080]);
      assert.match(
        await page.textContent("#timeline li:first-child") ?? "",
        /change\s+8080\/tcp in web on .* · node holders 4242 → 4243; addresses 0\.0\.0\.0, :: → 0\.0\.0\.0/,
      );
      await waitAnnounced(page, "Port 8080/tcp changed in web");
      await shot(page, "02b-changed");

      // 4. Filters, typed with the keyboard: the URL follows them.
      await page.focus("#f-port");
      await page.keyboard.type(String(held.port));
      await page.waitForFunction((port) => location.search === `?port=${port}`, held.port, WAIT);
      await waitRows(page, 1);
      assert.deepEqual(await shownPorts(page), [held.port]);
      await page.selectOption("#f-proto", "udp");
      await page.waitForSelector("#no-match:not([hidden])", WAIT);
      assert.equal(new URL(page.url()).searchParams.get("proto"), "udp");
      await page.selectOption("#f-proto", "");
      await page.waitForSelector("#no-match", { ...WAIT, state: "hidden" });
      assert.equal(new URL(page.url()).searchParams.get("proto"), null);
      await page.fill("#f-container", "web");
      await page.waitForSelector("#no-match:not([hidden])", WAIT);
      await page.fill("#f-container", "");
      await page.waitForSelector(row, WAIT);
      // A bad port filter says why, and is marked invalid for assistive technology.
      await page.fill("#f-port", "70000");
      await page.waitForSelector('#f-port[aria-invalid="true"]', WAIT);
      assert.match(await page.textContent("#f-port-error") ?? "", /not a port/);
      await page.fill("#f-port", String(held.port));
      await page.waitForSelector("#f-port:not([aria-invalid])", WAIT);
      await shot(page, "03-filtered");

      // 5. The port closes for real; the close is posted; the row goes, the timeline says so.
      await held.stop();
      const closed = held;
      held = undefined;
      await post(
        server.url,
        portEvent({ event: "close", port: closed.port, pids: [], last_pids: [closed.pid] }),
      );
      await page.waitForSelector(row, { ...WAIT, state: "detached" });
      assert.deepEqual((await timeline(page))[0], ["close", closed.port]);
      await page.waitForSelector("#no-match:not([hidden])", WAIT); // 8080 is open, but filtered out
      await shot(page, "04-closed");

      // 6. Reload: the state is read back, the filter kept.
      await page.reload();
      await waitStatus(page, "live");
      await page.waitForFunction(() => document.querySelectorAll("#timeline li").length > 0, null, WAIT);
      assert.equal(await page.inputValue("#f-port"), String(closed.port));
      assert.equal(new URL(page.url()).searchParams.get("port"), String(closed.port));
      assert.deepEqual(await shownPorts(page), []);
      assert.deepEqual(await timeline(page), [["close", closed.port], ["open", closed.port]]);
      assert.equal(await page.isVisible("#no-match"), true);
      await shot(page, "05-reloaded");

      // Clear the filters from the keyboard: Tab to the button, Enter.
      await page.focus("#f-unexpected");
      await page.keyboard.press("Tab");
      assert.equal(await page.evaluate(() => document.activeElement?.id), "f-clear");
      assert.equal(
        await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle),
        "solid",
        "the focused button shows its focus",
      );
      await page.keyboard.press("Enter");
      await page.waitForFunction(() => location.search === "", null, WAIT);
      await page.waitForSelector('#ports tr[data-port="8080"]', WAIT);
      assert.deepEqual(await shownPorts(page), [8080]);

      // 7. The listener restarts; what was stored meanwhile arrives once, by resuming after the last id.
      const before = (await timeline(page)).length;
      await server.stop();
      await waitStatus(page, "reconnecting");
      assert.equal(await page.textContent("#status-text"), "Reconnecting…");
      const missed = toRecords([
        portEvent({ port: 9090, container_id: "3f4e1c2b9a7d0011", container_name: "web", pids: [4343] }),
        portEvent({ port: 8080, event: "close", container_id: "3f4e1c2b9a7d0011", container_name: "web" }),
      ], new Date().toISOString());
      await store.ingest(missed);
      server.start(server.port);
      await waitStatus(page, "live");
      await page.waitForSelector('#ports tr[data-port="9090"]', WAIT);
      await page.waitForSelector('#ports tr[data-port="8080"]', { ...WAIT, state: "detached" });
      const after = await timeline(page);
      assert.deepEqual(after.slice(0, 2), [["close", 8080], ["open", 9090]]);
      assert.equal(after.length, before + 2, "each missed event once");
      const ids = await page.$$eval("#timeline li", (items) => items.map((li) => li.getAttribute("data-id")));
      assert.equal(new Set(ids).size, ids.length, "no event twice");
      await page.emulateMedia({ colorScheme: "dark" });
      await shot(page, "06-resumed-dark");

      // 8. A listener that wants a token: the page asks to sign in instead of spinning.
      tokenServer.start(0);
      await page.goto(`${tokenServer.url}/`);
      await waitStatus(page, "unauthorized");
      await page.waitForSelector("#signin:not([hidden])", WAIT);
      assert.match(await page.textContent("#signin") ?? "", /LISTENER_TOKEN/);
      assert.equal(await page.evaluate(() => document.activeElement?.id), "signin-token");
      await shot(page, "07-token-required");

      assert.deepEqual(outside, [], "no request left the machine");
      assert.deepEqual(
        pageErrors.filter((e) => !/401|Failed to load resource/.test(e)),
        [],
        "no script error on the page",
      );
      passed = true;
    } finally {
      if (held) await held.stop();
      await context?.close().catch(() => {});
      await server.stop();
      await tokenServer.stop();
      await store.close();
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
      await finish(passed);
    }
  },
});
