/**
 * The live ports page: `GET /` (index.html) and its assets under `/ui/` (app.js, style.css), plain files in
 * `listener/ui/` read once when the routes are built. No build step, nothing fetched from elsewhere: the page
 * reads the listener's own API (`/ports`, `/events`, `/events/stream`).
 *
 * Mount it before the bearer-token middleware so the page itself loads without a token (it holds no data):
 * `app.route("/", uiRoutes())`.
 * @module
 */
import { type Context, Hono } from "hono";

const DIR = new URL("./ui/", import.meta.url);

/** The assets served under `/ui/`, with their content types. */
export const UI_ASSETS: Readonly<Record<string, string>> = {
  "app.js": "text/javascript; charset=utf-8",
  "style.css": "text/css; charset=utf-8",
};

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
  for (const [name, type] of Object.entries(UI_ASSETS)) {
    const body = read(name);
    const version = fnv1a(body);
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
