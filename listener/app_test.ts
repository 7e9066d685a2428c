import assert from "node:assert/strict";
import { readLog, sampleEvent, withApp } from "./testing.ts";
import { changeScenario } from "./testing_change.ts";

const json = (body: unknown) => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});

Deno.test("POST /ingest: one event is stored as one compact line, ts first, then id", async () => {
  await withApp(async ({ app, store }) => {
    const ev = sampleEvent({ unknown_future_field: [1, 2] });
    const res = await app.request("/ingest", json(ev));
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.deepEqual(body, { ok: true, stored: 1, duplicates: 0, ids: [ev.id] });
    const text = await Deno.readTextFile(store.options.path);
    assert.match(text, /^\{"ts":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z","id":"[^"]+","event":"open",/);
    assert.equal(text.split("\n").length, 2);
    const [line] = await readLog(store.options.path);
    assert.deepEqual(line.unknown_future_field, [1, 2]);
  });
});

Deno.test("POST /ingest: seed-style bodies (text, text pids, no id) are stored as the seed did", async () => {
  await withApp(async ({ app, store }) => {
    let res = await app.request("/ingest", { method: "POST", body: "port 5000 is up" });
    assert.equal(res.status, 200);
    res = await app.request("/ingest", json({ event: "open", port: 5000, pids: "12 34", source: "polling" }));
    assert.equal(res.status, 200);
    const lines = await readLog(store.options.path);
    assert.equal(lines[0].message, "port 5000 is up");
    assert.deepEqual(lines[1].pids, [12, 34]);
    assert.equal(typeof lines[1].id, "string");
  });
});

Deno.test("POST /ingest: a batch with one bad event is refused whole (422), naming item, field and reason", async () => {
  await withApp(async ({ app, store }) => {
    const res = await app.request(
      "/ingest",
      json([sampleEvent(), sampleEvent({ port: 70000 }), sampleEvent()]),
    );
    assert.equal(res.status, 422);
    const body = await res.json();
    assert.equal(body.ok, false);
    assert.deepEqual(body.issues.map((i: { index: number; path: string }) => [i.index, i.path]), [[
      1,
      "port",
    ]]);
    assert.match(body.error, /item 1 .*`port`.*65535.*nothing in this request was stored/);
    assert.deepEqual(await readLog(store.options.path), []);
  });
});

Deno.test("POST /ingest: an object that is neither an event nor a message is refused", async () => {
  await withApp(async ({ app }) => {
    const res = await app.request("/ingest", json({ evnt: "open", port: 1 }));
    assert.equal(res.status, 422);
    assert.match((await res.json()).error, /neither a port event/);
  });
});

Deno.test("POST /ingest: malformed JSON is a 400 with the byte offset; nothing is written", async () => {
  await withApp(async ({ app, store }) => {
    const res = await app.request("/ingest", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '[{"event":"open","port":1,"source":"polling"},{"event":"open" "port":2}]',
    });
    assert.equal(res.status, 400);
    const body = await res.json();
    assert.equal(body.byte_offset, 62);
    assert.match(body.error, /malformed JSON at byte 62/);
    assert.deepEqual(await readLog(store.options.path), []);
  });
});

Deno.test("POST /ingest: NDJSON batches", async () => {
  await withApp(async ({ app, store }) => {
    const events = Array.from({ length: 50 }, (_, i) => sampleEvent({ port: 6000 + i }));
    const res = await app.request("/ingest", {
      method: "POST",
      headers: { "content-type": "application/x-ndjson" },
      body: events.map((e) => JSON.stringify(e)).join("\n") + "\n",
    });
    assert.equal(res.status, 200);
    assert.equal((await res.json()).stored, 50);
    assert.deepEqual((await readLog(store.options.path)).map((l) => l.port), events.map((e) => e.port));
  });
});

Deno.test("POST /ingest: NDJSON lines written through and serialised alike: compact, ts then id; ids deduped", async () => {
  await withApp(async ({ app, store }) => {
    const { id: _, ...noId } = sampleEvent({ port: 7001 });
    const withId = sampleEvent({ port: 7002 });
    const idLast = { ...sampleEvent({ port: 7003 }), id: "id-last" };
    const spaced = sampleEvent({ port: 7004, container_name: "my wéb" });
    const body = [noId, withId, idLast, spaced].map((e) => JSON.stringify(e)).join("\r\n") + "\n";
    const post = () =>
      app.request("/ingest", { method: "POST", headers: { "content-type": "application/x-ndjson" }, body });
    const [a, b] = await Promise.all([post(), post()]); // the same ids, concurrently
    const [ra, rb] = [await a.json(), await b.json()];
    assert.equal(ra.stored + rb.stored, 5, "the event without an id gets a new one each time");
    assert.equal(ra.duplicates + rb.duplicates, 3);
    const text = await Deno.readTextFile(store.options.path);
    const lines = text.split("\n").slice(0, -1);
    assert.equal(lines.length, 5);
    for (const line of lines) {
      const { ts, id, ...rest } = JSON.parse(line);
      assert.equal(line, JSON.stringify({ ts, id, ...rest }), "compact, ts first, then id");
    }
    const stored = lines.map((l) => JSON.parse(l));
    assert.deepEqual(stored.map((r) => r.port).sort(), [7001, 7001, 7002, 7003, 7004].sort());
    assert.equal(stored.find((r) => r.port === 7004).container_name, "my wéb");
    // The in-memory records answer queries with the same fields, ts first.
    const res = await (await app.request("/events?limit=10&order=asc")).json();
    assert.deepEqual(res.events.map((e: Record<string, unknown>) => JSON.stringify(e)), lines);
  });
});

Deno.test("POST /ingest: bodies over LISTENER_BODY_LIMIT get 413, with and without Content-Length", async () => {
  await withApp(async ({ app, store }) => {
    const big = JSON.stringify(sampleEvent({ pad: "x".repeat(3000) }));
    let res = await app.request("/ingest", {
      method: "POST",
      headers: { "content-type": "application/json", "content-length": String(big.length) },
      body: big,
    });
    assert.equal(res.status, 413);
    assert.match((await res.json()).error, /LISTENER_BODY_LIMIT/);
    const chunked = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode(big));
        c.close();
      },
    });
    res = await app.request("/ingest", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: chunked,
      // @ts-ignore: duplex is required for a stream body
      duplex: "half",
    });
    assert.equal(res.status, 413);
    assert.deepEqual(await readLog(store.options.path), []);
  }, { bodyLimit: 2048 });
});

Deno.test("POST /ingest: a retried id is acknowledged and stored once, also when retries race", async () => {
  await withApp(async ({ app, store }) => {
    const ev = sampleEvent();
    const results = await Promise.all(Array.from({ length: 5 }, () => app.request("/ingest", json(ev))));
    for (const r of results) assert.equal(r.status, 200);
    const bodies = await Promise.all(results.map((r) => r.json()));
    assert.equal(bodies.reduce((n, b) => n + b.stored, 0), 1);
    assert.equal(bodies.reduce((n, b) => n + b.duplicates, 0), 4);
    const again = await (await app.request("/ingest", json([ev, ev]))).json();
    assert.deepEqual([again.stored, again.duplicates], [0, 2]);
    assert.equal((await readLog(store.options.path)).length, 1);
  });
});

Deno.test("bearer token: required everywhere but /healthz and /schema; clear errors", async () => {
  await withApp(async ({ app }) => {
    assert.equal((await app.request("/healthz")).status, 200);
    assert.equal((await app.request("/schema")).status, 200);
    let res = await app.request("/ingest", json(sampleEvent()));
    assert.equal(res.status, 401);
    assert.match((await res.json()).error, /missing Authorization/);
    res = await app.request("/events", { headers: { authorization: "Bearer nope" } });
    assert.equal(res.status, 401);
    assert.match((await res.json()).error, /wrong bearer token/);
    res = await app.request("/ingest", {
      ...json(sampleEvent()),
      headers: { "content-type": "application/json", authorization: "Bearer s3cret" },
    });
    assert.equal(res.status, 200);
  }, { token: "s3cret" });
});

Deno.test("GET /events: filters, limit and order", async () => {
  await withApp(async ({ app }) => {
    const evs = [
      sampleEvent({ port: 3000, proto: "tcp", container_name: "api", container_id: "aaaaaaaaaaaa1111" }),
      sampleEvent({ port: 5001, proto: "udp", container_name: "dns", container_id: "bbbbbbbbbbbb2222" }),
      sampleEvent({ port: 5002, event: "close", pids: [], source: "shutdown", container_name: "api" }),
      sampleEvent({ port: 7000, host: "node-2", source: "ebpf" }),
    ];
    await app.request("/ingest", json(evs));
    const ports = async (q: string) => {
      const res = await app.request(`/events?${q}`);
      assert.equal(res.status, 200, q);
      return (await res.json()).events.map((e: { port: number }) => e.port);
    };
    assert.deepEqual(await ports(""), [7000, 5002, 5001, 3000]);
    assert.deepEqual(await ports("order=asc&limit=2"), [3000, 5001]);
    assert.deepEqual(await ports("port=5000-5002"), [5002, 5001]);
    assert.deepEqual(await ports("proto=udp"), [5001]);
    assert.deepEqual(await ports("event=close"), [5002]);
    assert.deepEqual(await ports("source=shutdown,ebpf"), [7000, 5002]);
    assert.deepEqual(await ports("container=api"), [5002, 3000]);
    assert.deepEqual(await ports("container=bbbbbbbbbbbb"), [5001]);
    assert.deepEqual(await ports("host=node-2"), [7000]);
    assert.deepEqual(await ports("since=1h"), [7000, 5002, 5001, 3000]);
    assert.deepEqual(await ports("until=2000-01-01T00:00:00Z"), []);
  });
});

Deno.test("GET /events: bad parameters get a 400 naming the parameter and what is accepted", async () => {
  await withApp(async ({ app }) => {
    for (
      const [q, re] of [["port=70000", /port.*1-65535/], ["limit=0", /limit/], [
        "since=yesterday",
        /since.*ISO 8601/,
      ], [
        "source=lsof",
        /source.*polling/,
      ], ["proto=sctp", /proto/]] as const
    ) {
      const res = await app.request(`/events?${q}`);
      assert.equal(res.status, 400, q);
      assert.match((await res.json()).error, re);
    }
  });
});

Deno.test("GET /ports: what is open now, per host and container", async () => {
  await withApp(async ({ app }) => {
    await app.request(
      "/ingest",
      json([sampleEvent({ port: 3000 }), sampleEvent({ port: 4000, proto: "udp" })]),
    );
    await app.request(
      "/ingest",
      json(sampleEvent({ port: 3000, event: "close", pids: [], last_pids: [123] })),
    );
    await app.request(
      "/ingest",
      json(sampleEvent({ port: 3000, container_id: "other", container_name: "db" })),
    );
    const body = await (await app.request("/ports")).json();
    assert.deepEqual(
      body.ports.map((
        p: { container_name: string; proto: string; port: number },
      ) => [p.container_name, p.proto, p.port]),
      [["db", "tcp", 3000], ["web", "udp", 4000]],
    );
    const filtered = await (await app.request("/ports?container=db")).json();
    assert.equal(filtered.count, 1);
    assert.equal((await app.request("/ports?port=abc")).status, 400);
  });
});

Deno.test("change events (file store): /ports follows holders and addresses, since kept; /events?event=change; the stream", async () => {
  await withApp(({ app, store }) => changeScenario(app, () => store.subscribers, sampleEvent));
});

Deno.test("GET /schema: the generated JSON Schema of the event contract", async () => {
  await withApp(async ({ app }) => {
    const schema = await (await app.request("/schema")).json();
    assert.equal(schema.title, "PortEvent");
    assert.ok(schema.required.includes("event"));
    const ingest = await (await app.request("/schema/ingest")).json();
    assert.equal(ingest.title, "IngestEvent");
    assert.equal((await app.request("/nope")).status, 404);
  });
});

Deno.test("POST /ingest: a request that waits too long for its turn gets 503 + Retry-After, nothing stored", async () => {
  await withApp(async ({ app, store }) => {
    // The first request holds the whole ingest budget (it declares the largest body allowed) until its body
    // ends; the second waits for it longer than the listener lets a request wait.
    let finish!: () => void;
    const first = sampleEvent();
    const body = new ReadableStream<Uint8Array>({
      async start(controller) {
        await new Promise<void>((r) => finish = r);
        controller.enqueue(new TextEncoder().encode(JSON.stringify(first)));
        controller.close();
      },
    });
    const held = app.request("/ingest", {
      method: "POST",
      headers: { "content-type": "application/json", "content-length": String(1024 * 1024) },
      body,
      duplex: "half",
    } as RequestInit);
    const second = sampleEvent();
    const res = await app.request("/ingest", json(second));
    assert.equal(res.status, 503);
    assert.equal(res.headers.get("retry-after"), "1");
    assert.match((await res.json()).error, /^overloaded: not stored \(waited 50 ms/);
    finish();
    assert.equal((await held).status, 200);
    const ids = (await readLog(store.options.path)).map((l) => l.id);
    assert.deepEqual(ids, [first.id]);
  }, { ingestWaitMs: 50 });
});
