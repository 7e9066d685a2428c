import assert from "node:assert/strict";
import { Balancer } from "./balancer.ts";
import { freePort } from "../testing/port.ts";

/** A loopback server answering with its name; stopped after `fn`. */
async function withServers(fn: (urls: string[], hits: string[]) => Promise<void>): Promise<void> {
  const hits: string[] = [];
  const servers = ["a", "b"].map((name) =>
    Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
      await req.text();
      hits.push(`${name} ${new URL(req.url).pathname}`);
      return new Response(name);
    })
  );
  try {
    await fn(servers.map((s) => `http://127.0.0.1:${s.addr.port}`), hits);
  } finally {
    await Promise.all(servers.map((s) => s.shutdown()));
  }
}

Deno.test("Balancer: per host, watcher n sticks to replica n mod count; other URLs are untouched", async () => {
  await withServers(async (urls, hits) => {
    const b = new Balancer(urls, "host");
    b.install();
    try {
      for (const n of [0, 1, 2, 3]) {
        const res = await fetch(b.urlFor(n), { method: "POST", body: "x" });
        assert.equal(await res.text(), n % 2 === 0 ? "a" : "b");
      }
      assert.equal(await (await fetch(`${urls[1]}/direct`)).text(), "b");
      assert.deepEqual(hits, ["a /ingest", "b /ingest", "a /ingest", "b /ingest", "b /direct"]);
      assert.deepEqual(b.traffic.map((t) => t.requests), [2, 2]);
    } finally {
      b.uninstall();
    }
  });
});

Deno.test("Balancer: a replica refusing connections fails over to the next; all down reaches the caller", async () => {
  await withServers(async (urls) => {
    const dead = `http://127.0.0.1:${freePort()}`;
    const b = new Balancer([dead, urls[1]], "host");
    b.install();
    try {
      const res = await fetch(b.urlFor(0), { method: "POST", body: "x" });
      assert.equal(await res.text(), "b");
      assert.equal(b.failovers, 1);
      assert.equal(b.traffic[0].failures, 1);
      // Marked down: the next request goes to the live replica first.
      assert.equal(await (await fetch(b.urlFor(0), { method: "POST", body: "y" })).text(), "b");
      assert.equal(b.traffic[0].failures, 1);
    } finally {
      b.uninstall();
    }
    const none = new Balancer([dead], "round-robin");
    none.install();
    try {
      await assert.rejects(() => fetch(none.urlFor(0), { method: "POST", body: "x" }));
    } finally {
      none.uninstall();
    }
  });
});
