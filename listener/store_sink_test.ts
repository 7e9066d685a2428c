import assert from "node:assert/strict";
import type { PortEvent } from "../events/schema.ts";
import { parsePolicy } from "../policy/load.ts";
import { NODE_DEBUGGER_POLICY } from "../policy/testing.ts";
import { EventStore } from "./file/store.ts";
import { StoreSink } from "./store_sink.ts";
import { sampleEvent, storeOptions, withTempDir } from "./testing.ts";
import { Verdicts } from "./verdicts.ts";

Deno.test("StoreSink (deno task start): events stored in-process get the policy's verdict, as over HTTP", async () => {
  await withTempDir(async (dir) => {
    const { store } = await EventStore.open(storeOptions(dir));
    try {
      const policy = parsePolicy(NODE_DEBUGGER_POLICY);
      const sink = new StoreSink(store, new Verdicts({ policy: () => policy, store: store.baselines }));
      await sink.send([sampleEvent({ port: 9229 }), sampleEvent({ port: 80 })] as unknown as PortEvent[]);
      const stored = await store.query({}, 10, "asc");
      assert.deepEqual(stored.map((e) => [e.port, (e.policy as { verdict: string }).verdict]), [
        [9229, "alert"],
        [80, "allow"],
      ]);
      // Without a policy, as before: no verdict.
      await new StoreSink(store).send([sampleEvent({ port: 81 })] as unknown as PortEvent[]);
      assert.equal((await store.query({ port: "81" } as never, 1, "desc"))[0].policy, undefined);
    } finally {
      await store.close();
    }
  });
});
