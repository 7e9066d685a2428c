import assert from "node:assert/strict";
import { IngestPoster } from "./ingest_post.ts";

/** A listener stand-in on loopback: answers per `answer`; `hang` never answers. */
function server(answer: (body: string, auth: string | null) => Response | "hang") {
  const bodies: string[] = [];
  let release = () => {};
  const released = new Promise<void>((r) => release = r);
  const s = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const body = await req.text();
    bodies.push(body);
    const a = answer(body, req.headers.get("authorization"));
    if (a !== "hang") return a;
    await released; // until the test ends (shutdown waits for the handlers)
    return new Response("late");
  });
  return {
    url: new URL(`http://127.0.0.1:${s.addr.port}/ingest`),
    bodies,
    close: () => {
      release();
      return s.shutdown();
    },
  };
}

for (const transport of ["http1", "fetch"] as const) {
  Deno.test(`IngestPoster (${transport}): NDJSON with the token; the answer classified`, async () => {
    const s = server((_, auth) =>
      auth === "Bearer t"
        ? Response.json({ accepted: 2, duplicates: 1 }, { status: 202 })
        : Response.json({ error: "no" }, { status: 401 })
    );
    const poster = new IngestPoster(s.url, "t", 2_000, transport);
    const anonymous = new IngestPoster(s.url, undefined, 2_000, transport);
    try {
      assert.deepEqual(await poster.post(['{"a":1}', '{"b":2}']), { kind: "ok", duplicates: 1 });
      assert.deepEqual(s.bodies, ['{"a":1}\n{"b":2}\n']);
      const refused = await anonymous.post(["{}"]);
      assert.equal(refused.kind, "retry");
      assert.match(refused.kind === "retry" ? refused.failure.error : "", /401.*LISTENER_TOKEN/);
    } finally {
      poster.close();
      poster.dispose();
      anonymous.close();
      anonymous.dispose();
      await s.close();
    }
  });

  Deno.test(`IngestPoster (${transport}): no answer in time is a retry; close() ends a POST on the wire`, async () => {
    const s = server(() => "hang");
    const poster = new IngestPoster(s.url, undefined, 150, transport);
    try {
      const late = await poster.post(["{}"]);
      assert.equal(late.kind, "retry");
      assert.match(late.kind === "retry" ? late.failure.error : "", /no answer within 150 ms/);
      const slow = new IngestPoster(s.url, undefined, 10_000, transport);
      const pending = slow.post(["{}"]);
      setTimeout(() => slow.close(), 50);
      const closed = await pending;
      slow.dispose();
      assert.deepEqual(closed, { kind: "retry", failure: { config: false, error: "closing" } });
    } finally {
      poster.close();
      poster.dispose();
      await s.close();
    }
  });
}
