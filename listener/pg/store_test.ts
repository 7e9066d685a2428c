import assert from "node:assert/strict";
import { waitUntil } from "../../infra/wait.ts";
import { uuidv7 } from "../../events/id.ts";
import { sampleEvent, sseEvents } from "../testing.ts";
import { at, changeScenario } from "../testing_change.ts";
import { freshDatabase, json, postgresSkipReason, startPostgres, withReplicas } from "./testing.ts";

const skip = postgresSkipReason();
if (skip) console.log(`pg/store_test.ts: skipped: ${skip}`);

const ev = (over: Record<string, unknown> = {}) => sampleEvent({ id: uuidv7(), ...over });

Deno.test({
  name: "PostgreSQL store: the API behaves as on the file store",
  ignore: skip !== undefined,
  async fn(t) {
    await using pg = await startPostgres();

    await t.step("ingest one, an array and NDJSON; the stored lines come back exactly", async () => {
      await withReplicas(await freshDatabase(pg), 1, async ([{ app }]) => {
        const one = ev({ unknown_future_field: [1, 2] });
        let res = await app.request("/ingest", json(one));
        assert.equal(res.status, 200);
        assert.deepEqual(await res.json(), { ok: true, stored: 1, duplicates: 0, ids: [one.id] });
        const arr = [ev(), ev(), ev()];
        res = await app.request("/ingest", json(arr));
        assert.equal((await res.json()).stored, 3);
        const nd = [ev(), ev()];
        res = await app.request("/ingest", {
          method: "POST",
          headers: { "content-type": "application/x-ndjson" },
          body: nd.map((e) => JSON.stringify(e)).join("\n") + "\n",
        });
        assert.equal((await res.json()).stored, 2);
        res = await app.request("/ingest", { method: "POST", body: "port 5000 is up" });
        assert.equal(res.status, 200);
        const { events } = await (await app.request("/events?order=asc&limit=100")).json();
        assert.deepEqual(
          events.map((e: { id: string }) => e.id).slice(0, 6),
          [one, ...arr, ...nd].map((e) => e.id),
        );
        assert.deepEqual(events[0].unknown_future_field, [1, 2]);
        assert.equal(events[6].message, "port 5000 is up");
        const desc = (await (await app.request("/events?limit=2")).json()).events;
        assert.deepEqual(desc.map((e: { id: string }) => e.id), [events[6].id, nd[1].id]);
      });
    });

    await t.step(
      "a repeated id, within a batch and through two replicas at once, is stored once",
      async () => {
        await withReplicas(await freshDatabase(pg), 2, async ([a, b]) => {
          const same = ev();
          const r1 = await (await a.app.request("/ingest", json([same, same]))).json();
          assert.deepEqual([r1.stored, r1.duplicates], [1, 1]);
          const batch = Array.from({ length: 200 }, () => ev());
          const results: { stored: number; duplicates: number }[] = await Promise.all(
            [a, b, a, b].map(async (r) => (await r.app.request("/ingest", json(batch))).json()),
          );
          const stored = results.reduce((n, r) => n + r.stored, 0);
          const dups = results.reduce((n, r) => n + r.duplicates, 0);
          assert.equal(stored, 200);
          assert.equal(dups, 600);
          const { count } = await (await b.app.request("/events?limit=10000")).json();
          assert.equal(count, 201);
          const again = await (await b.app.request("/ingest", json(same))).json();
          assert.deepEqual([again.stored, again.duplicates], [0, 1]);
        });
      },
    );

    await t.step(
      "query filters: port, proto, event, source, container id/prefix/name, host, since/until",
      async () => {
        await withReplicas(await freshDatabase(pg), 1, async ([{ app }]) => {
          const es = [
            ev({ port: 22, proto: "tcp", host: "h1", container_id: "aaaaaaaaaaaa1", container_name: "/db" }),
            ev({ port: 53, proto: "udp", host: "h1", source: "ebpf", event: "close", container_name: "dns" }),
            ev({
              port: 8080,
              proto: "tcp",
              host: "h2",
              container_id: "bbbbbbbbbbbb2",
              container_name: "web",
            }),
          ];
          await app.request("/ingest", json(es));
          const ids = async (q: string) =>
            (await (await app.request(`/events?order=asc&${q}`)).json()).events.map((e: { id: string }) =>
              e.id
            );
          assert.deepEqual(await ids("port=22,8000-9000"), [es[0].id, es[2].id]);
          assert.deepEqual(await ids("proto=udp"), [es[1].id]);
          assert.deepEqual(await ids("event=close"), [es[1].id]);
          assert.deepEqual(await ids("source=ebpf"), [es[1].id]);
          assert.deepEqual(await ids("container=aaaaaa"), [es[0].id]);
          assert.deepEqual(await ids("container=db"), [es[0].id]);
          assert.deepEqual(await ids("container=web"), [es[2].id]);
          assert.deepEqual(await ids("host=h2"), [es[2].id]);
          assert.deepEqual(await ids("since=1h&host=h1"), [es[0].id, es[1].id]);
          assert.deepEqual(await ids("until=1h"), []);
          assert.deepEqual(await ids("limit=1"), [es[0].id]);
        });
      },
    );

    await t.step(
      "/ports: open, refresh, close; out-of-order events; a late open does not resurrect",
      async () => {
        await withReplicas(await freshDatabase(pg), 2, async ([a, b]) => {
          const base = Date.parse("2026-11-25T08:00:00Z");
          const at = (s: number) => new Date(base + s * 1000).toISOString();
          const key = { host: "n1", container_id: "cccccccccccc", container_name: "api", port: 7000 };
          const open1 = ev({ ...key, observed_at: at(1) });
          const open2 = ev({ ...key, observed_at: at(2), pids: [9] });
          const close3 = ev({ ...key, event: "close", observed_at: at(3) });
          const ports = async (q = "") => (await (await a.app.request(`/ports?${q}`)).json()).ports;
          await b.app.request("/ingest", json(open1));
          await a.app.request("/ingest", json(open2));
          let p = await ports("container=api");
          assert.equal(p.length, 1);
          assert.equal(p[0].since, at(1));
          assert.deepEqual(p[0].pids, [9]);
          assert.equal(p[0].event_id, open2.id);
          // The close arrives, then (late, through the other replica) the first open again and an older one.
          await a.app.request("/ingest", json(close3));
          await b.app.request("/ingest", json([ev({ ...key, observed_at: at(0) })]));
          assert.deepEqual(await ports("container=cccccc"), []);
          // Out of order within one batch: newest is an open after a close.
          const other = { ...key, port: 7001 };
          await b.app.request(
            "/ingest",
            json([
              ev({ ...other, observed_at: at(6) }),
              ev({ ...other, observed_at: at(4) }),
              ev({ ...other, event: "close", observed_at: at(5) }),
            ]),
          );
          p = await ports("port=7001");
          assert.equal(p.length, 1);
          assert.equal(p[0].since, at(6));
          // Ports of other hosts do not show; the host filter is an index lookup.
          await a.app.request("/ingest", json(ev({ host: "n2", port: 7000 })));
          assert.equal((await ports("host=n1")).length, 1);
          assert.equal((await ports()).length, 2);
        });
      },
    );

    await t.step(
      "change events: /ports follows holders and addresses, since kept; /events; the stream",
      async () => {
        await withReplicas(
          await freshDatabase(pg),
          1,
          ([{ app, store }]) => changeScenario(app, () => store.subscribers, ev),
        );
      },
    );

    await t.step(
      "change events through two replicas, out of order: the newest wins, a late one does not resurrect",
      async () => {
        await withReplicas(await freshDatabase(pg), 2, async ([a, b]) => {
          const key = { host: "n1", container_id: "eeeeeeeeeeee", container_name: "svc", port: 7200 };
          const ports = async () => (await (await a.app.request("/ports?port=7200")).json()).ports;
          await a.app.request("/ingest", json(ev({ ...key, observed_at: at(1), pids: [1] })));
          // The newer change lands first (replica b), the older one after (replica a): the newer stays.
          const newer = ev({ ...key, event: "change", observed_at: at(3), pids: [3], last_pids: [2] });
          await b.app.request("/ingest", json(newer));
          await a.app.request(
            "/ingest",
            json(ev({ ...key, event: "change", observed_at: at(2), pids: [2], last_pids: [1] })),
          );
          let p = await ports();
          assert.deepEqual([p[0].pids, p[0].since, p[0].event_id], [[3], at(1), newer.id]);
          // Closed; then a change older than the close arrives late: it stays closed.
          await b.app.request("/ingest", json(ev({ ...key, event: "close", observed_at: at(5), pids: [] })));
          await a.app.request(
            "/ingest",
            json(ev({ ...key, event: "change", observed_at: at(4), pids: [4], last_pids: [3] })),
          );
          p = await ports();
          assert.deepEqual(p, []);
          // In one batch, close then a newer change: open again, since the change (a reopen).
          await a.app.request(
            "/ingest",
            json([
              ev({ ...key, event: "change", observed_at: at(7), pids: [7], last_pids: [6] }),
              ev({ ...key, event: "close", observed_at: at(6), pids: [] }),
            ]),
          );
          p = await ports();
          assert.deepEqual([p[0].pids, p[0].since], [[7], at(7)]);
        });
      },
    );

    await t.step(
      "under concurrent writes through two replicas, a subscriber gets every event once",
      async () => {
        await withReplicas(await freshDatabase(pg), 2, async ([a, b]) => {
          const got: string[] = [];
          const unsubscribe = a.store.subscribe((e) => got.push(e.id));
          try {
            const sent = new Set<string>();
            await Promise.all(Array.from({ length: 8 }, async (_, i) => {
              for (let k = 0; k < 10; k++) {
                const batch = Array.from({ length: 25 }, () => ev());
                for (const e of batch) sent.add(e.id as string);
                const res = await [a, b][i % 2].app.request("/ingest", json(batch));
                assert.equal(res.status, 200);
              }
            }));
            await waitUntil("every event on the subscriber", () => got.length >= sent.size);
            assert.equal(got.length, sent.size);
            assert.equal(new Set(got).size, sent.size);
            const { events } = await (await b.app.request("/events?order=asc&limit=10000")).json();
            assert.deepEqual(got, events.map((e: { id: string }) => e.id), "the stream follows store order");
          } finally {
            unsubscribe();
          }
        });
      },
    );

    await t.step("the stream crosses replicas and resumes by id", async () => {
      await withReplicas(await freshDatabase(pg), 2, async ([a, b]) => {
        const ac = new AbortController();
        const res = await a.app.request("/events/stream?proto=udp", { signal: ac.signal });
        const it = sseEvents(res.body!);
        await waitUntil("the subscriber", () => a.store.subscribers === 1);
        const sent = [ev({ proto: "udp" }), ev({ proto: "tcp" }), ev({ proto: "udp" })];
        await b.app.request("/ingest", json(sent));
        const got: string[] = [];
        const timer = setTimeout(() => ac.abort(), 10_000);
        while (got.length < 2) {
          const r = await it.next();
          if (r.done) break;
          got.push(r.value.id!);
        }
        clearTimeout(timer);
        assert.deepEqual(got, [sent[0].id, sent[2].id]);
        ac.abort();
        await it.return(undefined);
        // Resume on replica b after the first one: the rest, then live.
        const more = ev({ proto: "udp" });
        await a.app.request("/ingest", json(more));
        const ac2 = new AbortController();
        const res2 = await b.app.request("/events/stream", {
          signal: ac2.signal,
          headers: { "Last-Event-ID": sent[0].id as string },
        });
        const it2 = sseEvents(res2.body!);
        const again: string[] = [];
        const timer2 = setTimeout(() => ac2.abort(), 10_000);
        while (again.length < 3) {
          const r = await it2.next();
          if (r.done) break;
          again.push(r.value.id!);
        }
        clearTimeout(timer2);
        assert.deepEqual(again, [sent[1].id, sent[2].id, more.id]);
        ac2.abort();
        await it2.return(undefined);
      });
    });
  },
});
