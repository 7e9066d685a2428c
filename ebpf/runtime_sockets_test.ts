import assert from "node:assert/strict";
import { listenEvent } from "./testing/socket_events.ts";
import { EventEngine } from "./event_engine.ts";
import { SocketLedger } from "./ledger.ts";
import type { SocketEventSource } from "./event_source.ts";
import type { SocketEvent } from "./socket_event.ts";
import { envOf } from "../infra/env.ts";
import { waitUntil } from "../infra/wait.ts";
import { CollectingSink } from "../testing/sink.ts";
import { loadWatcherConfig } from "../watcher/config.ts";
import { NetNs, netnsSkipReason, skipIf } from "../testing/netns.ts";
import { RuntimeHolder } from "../testing/runtime_holder.ts";

/** A source the test drives (events reach the engine when emitted). */
class FakeSource implements SocketEventSource {
  readonly name = "fake";
  readonly ready = Promise.resolve();
  readonly gatherMs = 0;
  lost = 0;
  #onEvent?: (e: SocketEvent) => void;
  #stop?: () => void;
  run(onEvent: (e: SocketEvent) => void): Promise<string> {
    this.#onEvent = onEvent;
    return new Promise((resolve) => (this.#stop = () => resolve("stopped")));
  }
  emit(...events: SocketEvent[]): void {
    for (const e of events) this.#onEvent!(e);
  }
  stop(): Promise<void> {
    this.#stop?.();
    return Promise.resolve();
  }
}

Deno.test("SocketLedger: hidden sockets stay in the ledger but are not observed", () => {
  const hidden = new Set([4242]);
  const ledger = new SocketLedger({ hides: (_netns, pids) => [...pids].every((p) => hidden.has(p)) });
  ledger.apply(listenEvent(61301, 1, { netns: 7, pid: 4242, inode: 11, sk: "0x1", fd: 3 }), 7);
  ledger.apply(listenEvent(61302, 2, { netns: 7, pid: 5000, inode: 12, sk: "0x2", fd: 4 }), 7);
  assert.equal(ledger.sockets(7).length, 2, "both known (a reconciliation finds no drift)");
  assert.deepEqual(ledger.observations(7).map((o) => o.port), [61302]);
  assert.equal(ledger.observationOf({ netns: 7, proto: "tcp", port: 61301 }), undefined);
  assert.deepEqual(ledger.observationOf({ netns: 7, proto: "tcp", port: 61302 })?.pids, [5000]);
});

Deno.test({
  name: "eBPF engine, live: sockets a process of another namespace opened (Docker's DNS) are not reported",
  ignore: skipIf(netnsSkipReason(), "runtime-owned sockets, eBPF engine"),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "pw-ebpf-runtime-" });
    const ns = await NetNs.create();
    const netns = Deno.statSync(ns.path).ino!;
    const cleanup: (() => Promise<void>)[] = [];
    /**
     * Opens in the test namespace. `seeded`: the sockets exist before the engine starts (its seed scan finds
     * them: the ledger's observations); else they are opened after, and reach it as events (observationOf).
     */
    const run = async (report: boolean, seeded: boolean) => {
      const open = async () => {
        const runtime = await RuntimeHolder.start(ns.path);
        cleanup.push(() => runtime.close());
        const own = await ns.holder({ sockets: [{ proto: "tcp", host: "127.0.0.11" }] });
        cleanup.push(() => own.close());
        return { runtime, own, ownPort: own.report.sockets[0].port };
      };
      const before = seeded ? await open() : undefined;
      const config = loadWatcherConfig(
        ["--all-netns"],
        envOf({
          SNAPSHOT_PATH: `${dir}/snap-${report}-${seeded}`,
          REPORT_RUNTIME_SOCKETS: report ? "1" : "0",
          ...(before
            ? { WATCH_PORTS: [before.runtime.tcp.port, before.runtime.udp.port, before.ownPort].join(",") }
            : {}),
        }),
      );
      if (config === "help") throw new Error("help");
      const sink = new CollectingSink();
      const source = new FakeSource();
      const engine = new EventEngine({ config, sink, env: envOf({}), source, reconcileMs: 3600_000 });
      try {
        await engine.start();
        const running = engine.run();
        const { runtime: r, own, ownPort } = before ?? await open();
        // What bpftrace reports: a listen and a bind by the runtime's pid, a listen by the namespace's process.
        source.emit(
          listenEvent(r.tcp.port, 10, {
            pid: r.pid,
            netns,
            inode: r.tcp.inode,
            addr: "127.0.0.11",
            sk: "0xa",
          }),
          {
            ...listenEvent(r.udp.port, 11, { pid: r.pid, netns, inode: r.udp.inode, sk: "0xb" }),
            kind: "bind" as const,
            proto: "udp" as const,
          },
          listenEvent(ownPort, 12, { pid: own.pid, netns, inode: own.report.sockets[0].inode, sk: "0xc" }),
        );
        await engine.flushNow();
        const opens = () =>
          sink.sent.filter((e) => e.event === "open" && e.netns === netns).map((e) => `${e.proto}/${e.port}`)
            .sort();
        await waitUntil("the namespace's own port", () => opens().includes(`tcp/${ownPort}`), 10_000, 5);
        await source.stop();
        await running;
        return {
          opens: opens(),
          all: [`tcp/${ownPort}`, `tcp/${r.tcp.port}`, `udp/${r.udp.port}`].sort(),
          ownPort,
        };
      } finally {
        await engine.shutdown();
        while (cleanup.length > 0) await cleanup.pop()!();
      }
    };
    try {
      for (const seeded of [true, false]) {
        const hidden = await run(false, seeded);
        assert.deepEqual(
          hidden.opens,
          [`tcp/${hidden.ownPort}`],
          `seeded ${seeded}: only the namespace's own`,
        );
        const shown = await run(true, seeded);
        assert.deepEqual(shown.opens, shown.all, `seeded ${seeded}, REPORT_RUNTIME_SOCKETS=1: all three`);
      }
    } finally {
      while (cleanup.length > 0) await cleanup.pop()!();
      await ns.delete();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
