/**
 * What the live page's browser tests share (ui_e2e_test.ts, ui_signin_e2e_test.ts, ui_policy_e2e_test.ts):
 * headless Chromium (Debian's `chromium`, driven by npm playwright-core) and why the tests are skipped without
 * it, listener/main.ts run as `deno task listen` runs it, port events posted to /ingest as a watcher posts
 * them, screenshots, and waits on what the page shows, each with a deadline. A helper module, not a test.
 *
 * Screenshots go to $PORTWATCH_ARTIFACTS/ui-e2e, kept, or else to a temp folder (never the repository) that is
 * kept only when the test fails; their paths are printed.
 * @module
 */
import assert from "node:assert/strict";
import type { BrowserContext, Page } from "playwright-core";
import { uuidv7 } from "../events/id.ts";

const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

/** The deadline of every wait on the page. */
export const WAIT = { timeout: 10_000 };

/**
 * The few browser globals the tests' page functions use (the tests are type-checked without the DOM library;
 * the functions run in the page, where these exist). A test file declares what it uses, e.g.
 * `declare const document: PageDocument;`. Functions, not strings: the page's CSP forbids eval.
 */
export interface PageDocument {
  activeElement: { id: string } | null;
  cookie: string;
  getElementById(id: string): { textContent: string | null } | null;
  querySelector(selector: string): { textContent: string | null } | null;
  querySelectorAll(selector: string): { length: number };
}

/** What the tests read of `getComputedStyle(element)` in the page. */
export interface PageStyle {
  outlineStyle: string;
  backgroundColor: string;
}

declare const document: PageDocument;

type Playwright = typeof import("playwright-core");

async function loadPlaywright(): Promise<{ pw?: Playwright; skip?: string }> {
  try {
    if (!(await Deno.stat(CHROMIUM)).isFile) return { skip: `${CHROMIUM} is not a file` };
  } catch {
    return { skip: `${CHROMIUM} is not installed (apt-get install chromium)` };
  }
  try {
    return { pw: await import("playwright-core") };
  } catch (e) {
    return { skip: `npm:playwright-core cannot be loaded: ${(e as Error).message}` };
  }
}

const { pw, skip } = await loadPlaywright();

/**
 * True when the browser tests cannot run here (for `Deno.test`'s `ignore`), after printing why, as `file`
 * (the test file asking) says it: `ui_policy_e2e_test.ts: skipped: /usr/bin/chromium is not installed (…)`.
 */
export function skipped(file: string): boolean {
  if (skip) console.log(`${file}: skipped: ${skip}`);
  return skip !== undefined;
}

/** Headless Chromium with a profile in `dir`; errors on the page's console and uncaught ones collected. */
export async function launch(
  dir: string,
): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
  if (!pw) throw new Error(`no browser: ${skip}`);
  const context = await pw.chromium.launchPersistentContext(`${dir}/chromium-profile`, {
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
    headless: true,
    viewport: { width: 1366, height: 768 },
    reducedMotion: "reduce",
  });
  context.setDefaultTimeout(WAIT.timeout);
  const page = context.pages()[0] ?? await context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  return { context, page, errors };
}

/**
 * Where a test's screenshots go: `shot` takes one and prints its path; `finish(passed)` removes a temporary
 * folder when the test passed, else says where they are kept. Call `finish` in the test's finally.
 */
export async function screenshots(): Promise<{
  dir: string;
  shot(page: Page, name: string): Promise<void>;
  finish(passed: boolean): Promise<void>;
}> {
  const env = Deno.env.get("PORTWATCH_ARTIFACTS");
  let dir: string;
  if (env) {
    dir = `${env.replace(/\/$/, "")}/ui-e2e`;
    await Deno.mkdir(dir, { recursive: true });
  } else dir = await Deno.makeTempDir({ prefix: "portwatch-ui-e2e-" });
  const temporary = !env;
  return {
    dir,
    async shot(page, name) {
      const path = `${dir}/${name}.png`;
      await page.screenshot({ path, fullPage: false });
      console.log(`screenshot: ${path}`);
    },
    async finish(passed) {
      if (temporary && passed) await Deno.remove(dir, { recursive: true }).catch(() => {});
      else console.log(`screenshots kept in ${dir}`);
    },
  };
}

const NETNS = Number(/\[(\d+)\]/.exec(Deno.readLinkSync("/proc/self/ns/net"))?.[1] ?? 0);
/** This machine's name, as a watcher here reports it. */
export const HOST = Deno.hostname();

/** A port event as a watcher posts it. */
export function portEvent(over: Record<string, unknown>): Record<string, unknown> {
  return {
    id: uuidv7(),
    event: "open",
    proto: "tcp",
    family: 4,
    addrs: ["127.0.0.1"],
    pids: [],
    container_id: null,
    container_name: null,
    source: "polling",
    observed_at: new Date().toISOString(),
    host: HOST,
    netns: NETNS,
    ...over,
  };
}

/** POST one event to `base`/ingest (with the bearer `token`, if given); it must be stored. */
export async function post(base: string, event: Record<string, unknown>, token?: string): Promise<void> {
  const res = await fetch(`${base}/ingest`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
    },
    body: JSON.stringify(event),
  });
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.equal(body.stored, 1);
}

/** Port numbers of the rows shown in the open-ports tables. */
export const shownPorts = (page: Page) =>
  page.$$eval("#ports tbody tr", (rows) => rows.map((r) => Number(r.getAttribute("data-port"))));

/** [event, port] of the timeline items, newest first. */
export const timeline = (page: Page) =>
  page.$$eval(
    "#timeline li",
    (items) => items.map((li) => [li.getAttribute("data-event"), Number(li.getAttribute("data-port"))]),
  );

/** Wait for the status indicator to say `state` (live, reconnecting, unauthorized, …). */
export const waitStatus = (page: Page, state: string) =>
  page.waitForSelector(`#status[data-state="${state}"]`, WAIT);

/** Wait for the open-ports tables to show `n` rows. */
export const waitRows = (page: Page, n: number) =>
  page.waitForFunction((n) => document.querySelectorAll("#ports tbody tr").length === n, n, WAIT);

/** Wait for the live region to say `text`. */
export const waitAnnounced = (page: Page, text: string) =>
  page.waitForFunction(
    (text) => document.getElementById("announcer")?.textContent?.includes(text),
    text,
    WAIT,
  );

const MAIN = new URL("./main.ts", import.meta.url).pathname;

/** listener/main.ts as `deno task listen` runs it, on 127.0.0.1 and a free port, everything it prints kept. */
export class ListenerProcess {
  #child: Deno.ChildProcess;
  #drained: Promise<void>[] = [];
  stdout = "";
  stderr = "";
  url = "";

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
  }

  /** Start it with `env` besides a clean environment; resolves once it says where it listens. */
  static async start(dir: string, env: Record<string, string>): Promise<ListenerProcess> {
    const keep = ["HOME", "PATH", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR"];
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-net",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        "--allow-sys",
        MAIN,
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--log-path",
        `${dir}/portwatcher.log`,
      ],
      clearEnv: true,
      env: {
        ...Object.fromEntries(keep.flatMap((k) => Deno.env.get(k) ? [[k, Deno.env.get(k)!]] : [])),
        NO_COLOR: "1",
        ...env,
      },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const p = new ListenerProcess(child);
    const listening = Promise.withResolvers<string>();
    const drain = async (stream: ReadableStream<Uint8Array>, to: "stdout" | "stderr") => {
      for await (const text of stream.pipeThrough(new TextDecoderStream())) {
        p[to] += text;
        const m = /\{"listening":"([^"]+)"\}/.exec(p.stdout);
        if (m) listening.resolve(m[1]);
      }
    };
    p.#drained = [drain(child.stdout, "stdout"), drain(child.stderr, "stderr")];
    const timer = setTimeout(
      () => listening.reject(new Error("the listener did not start within 15 s")),
      15_000,
    );
    child.status.then((s) => listening.reject(new Error(`the listener exited (${s.code}): ${p.stderr}`)));
    try {
      p.url = await listening.promise;
      return p;
    } catch (e) {
      await p.stop();
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGTERM (SIGKILL after 10 s); resolves once it exited and all it printed is read. */
  async stop(): Promise<void> {
    const timer = setTimeout(() => this.#kill("SIGKILL"), 10_000);
    this.#kill("SIGTERM");
    await this.#child.status;
    clearTimeout(timer);
    await Promise.all(this.#drained);
  }

  #kill(signal: Deno.Signal): void {
    try {
      this.#child.kill(signal);
    } catch { /* already gone */ }
  }
}
