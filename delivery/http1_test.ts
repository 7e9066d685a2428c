import assert from "node:assert/strict";
import { Http1Client } from "./http1.ts";

/** A raw TCP server on loopback answering each request with `answer(n)` (n counts requests on all connections). */
function rawServer(answer: (n: number, conn: Deno.TcpConn) => string | null | Promise<string | null>) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.TcpConn>();
  let n = 0;
  const accepted = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      (async () => {
        const buf = new Uint8Array(65536);
        let pending = "";
        try {
          for (;;) {
            const k = await conn.read(buf);
            if (k === null) break;
            pending += new TextDecoder().decode(buf.subarray(0, k));
            for (;;) {
              const end = pending.indexOf("\r\n\r\n");
              if (end < 0) break;
              const len = Number(/content-length: (\d+)/i.exec(pending.slice(0, end))?.[1] ?? 0);
              if (pending.length < end + 4 + len) break;
              pending = pending.slice(end + 4 + len);
              const out = await answer(++n, conn);
              if (out === null) {
                conn.close();
                return;
              }
              await conn.write(new TextEncoder().encode(out));
            }
          }
        } catch { /* closed */ }
        conns.delete(conn);
      })();
    }
  })();
  return {
    url: new URL(`http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/ingest`),
    requests: () => n,
    /** Close every open connection (an idle timeout), keeping the listener. */
    dropConnections() {
      for (const c of conns) {
        try {
          c.close();
        } catch { /* gone */ }
      }
      conns.clear();
    },
    async close() {
      listener.close();
      this.dropConnections();
      await accepted.catch(() => {});
    },
  };
}

const timeout = () => 5_000;

Deno.test("Http1Client: POSTs to Deno.serve, keeps the connection, reads bodies by length", async () => {
  const seen: { path: string; auth: string | null; body: string }[] = [];
  const ports = new Set<number>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req, info) => {
    ports.add((info.remoteAddr as Deno.NetAddr).port);
    seen.push({
      path: new URL(req.url).pathname + new URL(req.url).search,
      auth: req.headers.get("authorization"),
      body: await req.text(),
    });
    return Response.json({ accepted: 1, duplicates: 0 }, { status: 202, headers: { "retry-after": "3" } });
  });
  const url = new URL(`http://127.0.0.1:${server.addr.port}/ingest?x=1`);
  const client = new Http1Client(url);
  try {
    for (let i = 0; i < 3; i++) {
      const a = await client.post(
        "/ingest?x=1",
        { authorization: "Bearer t", "content-type": "application/x-ndjson" },
        `{"n":${i}}\n`,
        timeout(),
      );
      assert.equal(a.status, 202);
      assert.deepEqual(JSON.parse(a.text), { accepted: 1, duplicates: 0 });
      assert.equal(a.headers.get("retry-after"), "3");
    }
    assert.deepEqual(seen.map((s) => s.body), ['{"n":0}\n', '{"n":1}\n', '{"n":2}\n']);
    assert.ok(seen.every((s) => s.path === "/ingest?x=1" && s.auth === "Bearer t"));
    assert.equal(ports.size, 1, "one kept-alive connection for the three requests");
  } finally {
    client.close();
    await server.shutdown();
  }
});

Deno.test("Http1Client: chunked bodies with a trailer, and answers split across reads", async () => {
  const server = rawServer(async (n, conn) => {
    if (n === 1) {
      return "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n7\r\n, world\r\n0\r\nx-trailer: 1\r\n\r\n";
    }
    // byte by byte
    const text = "HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok";
    for (const ch of text.slice(0, -1)) await conn.write(new TextEncoder().encode(ch));
    return text.slice(-1);
  });
  const client = new Http1Client(server.url);
  try {
    const a = await client.post("/ingest", {}, "x", timeout());
    assert.deepEqual([a.status, a.text], [200, "hello, world"]);
    const b = await client.post("/ingest", {}, "y", timeout());
    assert.deepEqual([b.status, b.text], [201, "ok"]);
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("Http1Client: a kept connection the server closed is replaced once; a server that closes mid-answer fails", async () => {
  const server = rawServer((n) =>
    n === 3
      ? "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort"
      : "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
  );
  const client = new Http1Client(server.url);
  try {
    assert.equal((await client.post("/ingest", {}, "1", timeout())).text, "ok");
    server.dropConnections(); // an idle timeout on the server's side
    assert.equal((await client.post("/ingest", {}, "2", timeout())).text, "ok");
    assert.equal(server.requests(), 2);
    // request 3: the answer's body is cut short, then the connection ends: an error, not a retry
    const third = client.post("/ingest", {}, "3", timeout());
    setTimeout(() => server.dropConnections(), 100);
    await assert.rejects(third, /closed the connection before it answered in full/);
    assert.equal(server.requests(), 3);
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("Http1Client: connection: close and HTTP/1.0 answers end the connection; no listener is an error", async () => {
  const server = rawServer((n) =>
    n === 1
      ? "HTTP/1.1 503 Busy\r\nconnection: close\r\ncontent-length: 4\r\n\r\nbusy"
      : "HTTP/1.0 200 OK\r\n\r\nuntil the end"
  );
  const client = new Http1Client(server.url);
  try {
    const a = await client.post("/ingest", {}, "1", timeout());
    assert.deepEqual([a.status, a.text], [503, "busy"]);
    const b = client.post("/ingest", {}, "2", timeout());
    setTimeout(() => server.dropConnections(), 100); // HTTP/1.0 without a length: the body ends with the connection
    const answer = await b;
    assert.deepEqual([answer.status, answer.text], [200, "until the end"]);
  } finally {
    client.close();
    await server.close();
  }
  const gone = new Http1Client(server.url);
  await assert.rejects(gone.post("/ingest", {}, "x", timeout()), Deno.errors.ConnectionRefused);
  assert.throws(() => new Http1Client(new URL("https://127.0.0.1/")), /plain http, not https:/);
  await assert.rejects(new Http1Client(server.url).post("/", { bad: "a\r\nb" }, "", timeout()), /line break/);
});

Deno.test("Http1Client: an abort ends a request the server never answers", async () => {
  const server = rawServer(() => new Promise<string>(() => {}));
  const client = new Http1Client(server.url);
  try {
    const t0 = performance.now();
    await assert.rejects(
      client.post("/ingest", {}, "x", 200),
      (e: Error) => e.name === "TimeoutError" && /no answer within 200 ms/.test(e.message),
    );
    assert.ok(performance.now() - t0 < 2_000);
  } finally {
    client.close();
    await server.close();
  }
});
