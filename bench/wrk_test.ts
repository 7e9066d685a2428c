/** Tests for the wrk report parser, on reports captured from real wrk 4.1.0 runs on loopback. */
import assert from "node:assert/strict";
import { luaString, parseDuration, parseWrk, postScript, runWrk } from "./wrk.ts";

// POST /ingest to the portwatch listener, fsync off: wrk -t1 -c16 -d3s --latency -s ingest.lua
const OURS_16 = `Running 3s test @ http://127.0.0.1:45093/ingest
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.70ms    0.96ms  16.34ms   92.17%
    Req/Sec     5.93k   313.15     6.40k    73.33%
  Latency Distribution
     50%    2.72ms
     75%    3.04ms
     90%    3.30ms
     99%    5.70ms
  17737 requests in 3.01s, 3.25MB read
Requests/sec:   5900.87
Transfer/sec:      1.08MB
`;

// POST to a route the FastAPI peer does not have (404s): wrk -t1 -c4 -d1s --latency -s bad.lua
const NOT_FOUND = `Running 1s test @ http://127.0.0.1:18555/nope
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   812.62us    1.05ms  15.86ms   98.47%
    Req/Sec     5.61k   355.26     6.57k    81.82%
  Latency Distribution
     50%  713.00us
     75%  776.00us
     90%    0.88ms
     99%    5.01ms
  6140 requests in 1.10s, 0.90MB read
  Non-2xx or 3xx responses: 6140
Requests/sec:   5581.99
Transfer/sec:    839.48KB
`;

// A server that sleeps 1.2 s per request: wrk -t1 -c4 -d4s --timeout 2s --latency
const SLOW = `Running 4s test @ http://127.0.0.1:18556/
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.23s    19.92ms   1.24s    66.67%
    Req/Sec     3.00      0.00     3.00    100.00%
  Latency Distribution
     50%    1.24s 
     75%    1.24s 
     90%    1.24s 
     99%    1.24s 
  12 requests in 4.01s, 1.32KB read
Requests/sec:      2.99
Transfer/sec:     338.31B
`;

// The same server with a 1 s timeout: every request times out: wrk -t1 -c4 -d3s --timeout 1s --latency
const TIMEOUTS = `Running 3s test @ http://127.0.0.1:18556/
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     0.00us    0.00us   0.00us    -nan%
    Req/Sec     8.00     10.44    20.00     66.67%
  Latency Distribution
     50%    0.00us
     75%    0.00us
     90%    0.00us
     99%    0.00us
  8 requests in 3.01s, 0.88KB read
  Socket errors: connect 0, read 0, write 0, timeout 8
Requests/sec:      2.66
Transfer/sec:     300.72B
`;

// wrk against a closed port prints this and exits 1.
const REFUSED = "unable to connect to 127.0.0.1:1 Connection refused\n";

Deno.test("parseWrk reads a clean run in ms", () => {
  assert.deepEqual(parseWrk(OURS_16), {
    requests: 17737,
    rps: 5900.87,
    p50Ms: 2.72,
    p99Ms: 5.7,
    non2xx: 0,
    errors: 0,
  });
});

Deno.test("parseWrk reads microseconds and counts non-2xx responses", () => {
  const r = parseWrk(NOT_FOUND);
  assert.equal(r.requests, 6140);
  assert.equal(r.non2xx, 6140);
  assert.equal(r.errors, 0);
  assert.ok(Math.abs(r.p50Ms - 0.713) < 1e-9);
  assert.equal(r.p99Ms, 5.01);
  assert.equal(r.rps, 5581.99);
});

Deno.test("parseWrk reads seconds with wrk's trailing blanks", () => {
  const r = parseWrk(SLOW);
  assert.equal(r.requests, 12);
  assert.equal(r.p50Ms, 1240);
  assert.equal(r.p99Ms, 1240);
  assert.equal(r.rps, 2.99);
});

Deno.test("parseWrk sums socket errors", () => {
  const r = parseWrk(TIMEOUTS);
  assert.equal(r.errors, 8);
  assert.equal(r.non2xx, 0);
  assert.equal(r.p50Ms, 0);
});

Deno.test("parseWrk refuses output that is not a report", () => {
  assert.throws(() => parseWrk(REFUSED), /no latency distribution/);
  assert.throws(() => parseWrk(OURS_16.replace(/^\s+99%.*$/m, "")), /99% latency line/);
});

Deno.test("parseDuration converts every wrk unit to ms", () => {
  assert.equal(parseDuration("713.00us"), 0.713);
  assert.equal(parseDuration("2.72ms"), 2.72);
  assert.equal(parseDuration("1.24s "), 1240);
  assert.equal(parseDuration("1.50m"), 90_000);
  assert.throws(() => parseDuration("12"), /not a wrk duration/);
});

Deno.test("luaString escapes quotes, backslashes, newlines and UTF-8", () => {
  assert.equal(luaString('a"b\\c\nd'), '"a\\"b\\\\c\\010d"');
  assert.equal(luaString("é1"), '"\\195\\1691"');
});

/** True when wrk can be run here (installed, and run permission granted). */
async function wrkAvailable(): Promise<boolean> {
  try {
    await new Deno.Command("wrk", { args: ["-v"], stdout: "null", stderr: "null" }).output();
    return true;
  } catch {
    return false;
  }
}
const hasWrk = await wrkAvailable();

Deno.test({
  name: "runWrk posts the script's exact body and Content-Type on loopback",
  ignore: !hasWrk,
  permissions: { run: ["wrk"], net: ["127.0.0.1"], write: true, read: true },
  async fn() {
    const body = '{"a":"x\\"y","b":"é"}\n{"c":1}\n';
    const seen = new Set<string>();
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
      seen.add(`${req.method} ${req.headers.get("content-type")} ${await req.text()}`);
      return new Response(req.url.endsWith("/missing") ? "no" : "ok", {
        status: req.url.endsWith("/missing") ? 404 : 200,
      });
    });
    const dir = await Deno.makeTempDir({ prefix: "wrk_test_" });
    try {
      const script = `${dir}/post.lua`;
      await Deno.writeTextFile(script, postScript(body, "application/x-ndjson"));
      const base = `http://127.0.0.1:${server.addr.port}`;
      const ok = await runWrk({ url: `${base}/ingest`, connections: 2, seconds: 1, script });
      assert.ok(ok.requests > 0 && ok.rps > 0 && ok.p50Ms > 0 && ok.p99Ms >= ok.p50Ms);
      assert.equal(ok.non2xx, 0);
      assert.deepEqual([...seen], [`POST application/x-ndjson ${body}`]);
      const missing = await runWrk({ url: `${base}/missing`, connections: 1, seconds: 1, script });
      assert.equal(missing.non2xx, missing.requests);
    } finally {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
