/**
 * The learned baselines over HTTP: `GET /baselines` lists every scope (its window, whether it still learns,
 * its ports), `GET /baselines/export` writes the finished ones as policy YAML, and `DELETE /baselines?scope=K`
 * (repeatable; `?all=1` for every scope) forgets scopes so they learn again.
 * @module
 */
import { Hono } from "hono";
import type { Verdicts } from "./verdicts.ts";

const NO_LEARNING =
  "no baselines: the listener learns them when POLICY_PATH names a policy with a learn section (see the README's policy cookbook)";

/** The baseline routes over `verdicts` (undefined: no policy is in force; the routes say so). */
export function baselineRoutes(verdicts: Verdicts | undefined): Hono {
  const app = new Hono();
  app.get("/baselines", (c) => {
    const learn = verdicts?.policy?.source.learn ?? null;
    const scopes = verdicts?.list() ?? [];
    return c.json({ learn, count: scopes.length, scopes, ...(learn ? {} : { note: NO_LEARNING }) });
  });
  app.get("/baselines/export", (c) => {
    if (!verdicts) return c.json({ ok: false, error: NO_LEARNING }, 404);
    c.header("content-type", "application/yaml; charset=utf-8");
    return c.body(verdicts.export());
  });
  app.delete("/baselines", async (c) => {
    if (!verdicts) return c.json({ ok: false, error: NO_LEARNING }, 404);
    const scopes = c.req.queries("scope") ?? [];
    const all = c.req.query("all");
    if (scopes.length === 0 && all !== "1") {
      return c.json({
        ok: false,
        error:
          "say which baselines to reset: ?scope=<key> (repeatable; GET /baselines lists the keys) or ?all=1",
      }, 400);
    }
    if (scopes.length > 0 && all !== undefined) {
      return c.json({ ok: false, error: "give ?scope=<key> or ?all=1, not both" }, 400);
    }
    const known = new Set(verdicts.list().map((s) => s.key));
    const unknown = scopes.filter((k) => !known.has(k));
    if (unknown.length > 0) {
      return c.json({
        ok: false,
        error: `no baseline scope ${
          unknown.map((k) => JSON.stringify(k)).join(", ")
        }; GET /baselines lists them`,
      }, 404);
    }
    const reset = await verdicts.reset(scopes.length > 0 ? scopes : undefined);
    return c.json({ ok: true, count: reset.length, reset });
  });
  return app;
}
