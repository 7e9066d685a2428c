import assert from "node:assert/strict";
import { NetNs, skipIf } from "../testing/netns.ts";
import { waitUntil } from "../infra/wait.ts";
import { nsSkipReason, onPort, runTester, Tester } from "./harness_test.ts";

for (const proto of ["tcp", "udp"] as const) {
  Deno.test(`transient.ts ${proto} 0 --ms 600: the port is seen open, then closed; the program exits 0`, async () => {
    const t = Tester.start("transient", [proto, "0", "--ms", "600", "--host", "127.0.0.1"]);
    try {
      const ready = await t.ready();
      assert.equal(ready.proto, proto);
      // the socket is there right after the ready line (the program prints it once bound)
      assert.equal(onPort(ready.port, proto).length, 1);
      await waitUntil(
        "the transient port to close",
        () => onPort(ready.port, proto).length === 0,
        10_000,
        10,
      );
      const end = await t.finish();
      assert.equal(end.code, 0, end.stderr);
      assert.equal(end.lines.length, 2);
      const closed = end.lines[1];
      assert.equal(closed.closed, true);
      assert.equal(closed.reason, "timeout");
      assert.equal(closed.port, ready.port);
      assert.ok(closed.held_ms >= 595 && closed.held_ms < 5000, `held ${closed.held_ms} ms`);
    } finally {
      await t.close();
    }
  });
}

Deno.test("transient.ts: default --ms is 200; --ms 0 closes at once; bad --ms and PROTO exit 2", async () => {
  let end = await runTester("transient", ["tcp", "0", "--host", "127.0.0.1"]);
  assert.equal(end.code, 0, end.stderr);
  assert.ok(end.lines[1].held_ms >= 195, JSON.stringify(end.lines));
  end = await runTester("transient", ["udp", "0", "--host", "127.0.0.1", "--ms", "0"]);
  assert.equal(end.code, 0, end.stderr);
  assert.equal(end.lines[1].closed, true);
  end = await runTester("transient", ["tcp", "0", "--ms", "1.5"]);
  assert.equal(end.code, 2);
  assert.ok(
    end.stderr.startsWith("transient: --ms=1.5: expected a whole number of milliseconds"),
    end.stderr,
  );
  end = await runTester("transient", ["icmp", "0"]);
  assert.equal(end.code, 2);
  assert.ok(end.stderr.startsWith("transient: PROTO=icmp: expected tcp or udp"), end.stderr);
});

Deno.test({
  name: "transient.ts inside a namespace: 5000/tcp opens and closes there; a held port exits 1",
  ignore: skipIf(nsSkipReason(), "transient.ts inside a namespace"),
  async fn() {
    const ns = await NetNs.create();
    const holder = Tester.start("hold", ["udp", "5001"], ns);
    try {
      const t = Tester.start("transient", ["tcp", "5000", "--ms", "400"], ns);
      try {
        await t.ready();
        assert.equal(onPort(5000, "tcp", ns).length, 1);
        await waitUntil("5000/tcp to close", () => onPort(5000, "tcp", ns).length === 0, 10_000, 10);
        assert.equal((await t.finish()).code, 0);
      } finally {
        await t.close();
      }
      const { pid } = await holder.ready();
      const end = await runTester("transient", ["udp", "5001"], ns);
      assert.equal(end.code, 1);
      assert.equal(
        end.stderr.trim(),
        `transient: port 5001/udp is already in use on 0.0.0.0 (held by pid ${pid} comm deno)`,
      );
    } finally {
      await holder.close();
      await ns.delete();
    }
  },
});
