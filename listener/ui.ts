/**
 * The live ports page: `GET /` (index.html) and its assets under `/ui/` (the ES modules app.js and those it
 * imports, style.css), plain files in `listener/ui/` read once when the routes are built. No build step,
 * nothing fetched from elsewhere: the page reads the listener's own API (`/ports`, `/events`,
 * `/events/stream`). One of its modules, ports_rule.js, is the open-port rule the listener itself applies
 * (listener/ports_state.ts imports it).
 *
 * Mount it before the bearer-token middleware so the page itself loads without a token (it holds no data):
 * `app.route("/", uiRoutes())`.
 * @module
 */
import { type Context, Hono } from "hono";

const DIR = new URL("./ui/", import.meta.url);

/** The assets served under `/ui/`, with their content types. */
const JS = "text/javascript; charset=utf-8";
export const UI_ASSETS: Readonly<Record<string, string>> = {
  "app.js": JS,
  "dom.js": JS,
  "filters.js": JS,
  "ports_rule.js": JS,
  "render.js": JS,
  "status.js": JS,
  "text.js": JS,
  "style.css": "text/css; charset=utf-8",
};

/** A module's static or dynamic import of a sibling module: `from "./x.js"`, `import("./x.js")`. */
const IMPORT = /(\bfrom\s*|\bimport\s*\(\s*)"\.\/([A-Za-z0-9_-]+\.js)"/g;

/** Seconds a browser may reuse an asset without asking again. */
export const ASSET_MAX_AGE = 300;

/**
 * The page's Content-Security-Policy: everything from this origin only, no inline script or style, so the page
 * can load nothing from the internet even by mistake.
 */
export const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

/** FNV-1a of the text, as 8 hex digits: an ETag and a cache-busting version, computed without async crypto. */
function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, "0");
}

interface Asset {
  body: string;
  type: string;
  etag: string;
  cacheControl: string;
}

function read(name: string): string {
  try {
    return Deno.readTextFileSync(new URL(name, DIR));
  } catch (e) {
    throw new Error(`the ports page asset listener/ui/${name} cannot be read: ${(e as Error).message}`);
  }
}

/**
 * The assets' bodies as served and their versions. A module names the siblings it imports with their
 * version (`from "./text.js?v=1a2b3c4d"`), and its own version is that of its text so rewritten: a module
 * changes version whenever one it imports (directly or not) does, so a browser never mixes a new module with
 * an old one it kept in its cache. Fails, naming the file, on an import of a file that is not an asset, or on
 * a cycle.
 */
function versioned(texts: Map<string, string>): Map<string, { body: string; version: string }> {
  const done = new Map<string, { body: string; version: string }>();
  const visiting = new Set<string>();
  const visit = (name: string): { body: string; version: string } => {
    const got = done.get(name);
    if (got) return got;
    if (visiting.has(name)) {
      throw new Error(`the ports page's modules import each other in a cycle through listener/ui/${name}`);
    }
    visiting.add(name);
    let body = texts.get(name)!;
    if (name.endsWith(".js")) {
      body = body.replace(IMPORT, (_m, head: string, dep: string) => {
        if (!texts.has(dep) || !dep.endsWith(".js")) {
          throw new Error(
            `listener/ui/${name} imports ./${dep}, which is not one of the page's assets (UI_ASSETS)`,
          );
        }
        return `${head}"./${dep}?v=${visit(dep).version}"`;
      });
    }
    visiting.delete(name);
    const out = { body, version: fnv1a(body) };
    done.set(name, out);
    return out;
  };
  for (const name of texts.keys()) visit(name);
  return done;
}

/** Answer `asset`, or 304 when the browser already holds this version. */
function serve(c: Context, asset: Asset, extra: Record<string, string> = {}): Response {
  const headers: Record<string, string> = {
    "Cache-Control": asset.cacheControl,
    "ETag": asset.etag,
    "X-Content-Type-Options": "nosniff",
    ...extra,
  };
  const inm = c.req.header("If-None-Match");
  if (inm && inm.split(",").some((t) => t.trim().replace(/^W\//, "") === asset.etag)) {
    return c.body(null, 304, headers);
  }
  return c.body(asset.body, 200, { "Content-Type": asset.type, ...headers });
}

/**
 * Routes for the ports page: `GET /` and `GET /ui/<asset>`. The files are read when this is called (at
 * startup); a missing file fails here, not on the first request.
 */
export function uiRoutes(): Hono {
  const assets = new Map<string, Asset>();
  const versions: Record<string, string> = {};
  const built = versioned(new Map(Object.keys(UI_ASSETS).map((name) => [name, read(name)])));
  for (const [name, type] of Object.entries(UI_ASSETS)) {
    const { body, version } = built.get(name)!;
    versions[name] = version;
    assets.set(name, {
      body,
      type,
      etag: `"${version}"`,
      cacheControl: `public, max-age=${ASSET_MAX_AGE}`,
    });
  }
  // The page names its assets with their version, so a browser never mixes a new page with an old script.
  const html = read("index.html").replace(
    /\/ui\/(app\.js|style\.css)"/g,
    (_m, name: string) => `/ui/${name}?v=${versions[name]}"`,
  );
  const index: Asset = {
    body: html,
    type: "text/html; charset=utf-8",
    etag: `"${fnv1a(html)}"`,
    cacheControl: "no-cache",
  };

  const app = new Hono();
  const page = (c: Context) =>
    serve(c, index, { "Content-Security-Policy": CSP, "Referrer-Policy": "no-referrer" });
  app.get("/", page);
  app.get("/index.html", page);
  app.get("/ui/:name", (c) => {
    const asset = assets.get(c.req.param("name"));
    if (!asset) {
      return c.json({
        ok: false,
        error: `no asset ${c.req.path}; assets: ${[...assets.keys()].map((n) => `/ui/${n}`).join(", ")}`,
      }, 404);
    }
    return serve(c, asset);
  });
  return app;
}
