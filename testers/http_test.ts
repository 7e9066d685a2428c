import assert from "node:assert/strict";
import { NetNs, skipIf } from "../testing/netns.ts";
import { nsSkipReason, onPort, runTester, scan, Tester } from "./harness_test.ts";

Deno.test("http.ts 0 --host 127.0.0.1: answers Hello <port> on the printed port; SIGTERM stops it", async () => {
  const t = Tester.start("http", ["0", "--host", "127.0.0.1"]);
  try {
    const ready = await t.ready();
    assert.deepEqual(
      { ...ready, port: 0 },
      { ready: true, proto: "tcp", port: 0, host: "127.0.0.1", pid: t.child.pid },
    );
    for (const path of ["/", "/anything?x=1"]) {
      const res = await fetch(`http://127.0.0.1:${ready.port}${path}`, { signal: AbortSignal.timeout(5000) });
      assert.equal(res.status, 200);
      assert.equal(await res.text(), `Hello ${ready.port}`);
    }
    assert.equal(onPort(ready.port, "tcp").length, 1);
    t.kill("SIGTERM");
    const end = await t.finish();
    assert.equal(end.code, 0, end.stderr);
    assert.equal(end.lines.at(-1)!.closed, true);
    assert.deepEqual(onPort(ready.port, "tcp"), []);
  } finally {
    await t.close();
  }
});

Deno.test("http.ts: a port in use exits 1 naming the holder; a bad port exits 2", async () => {
  const first = Tester.start("hold", ["tcp", "0", "--host", "127.0.0.1"]);
  try {
    const { port, pid } = await first.ready();
    const end = await runTester("http", [String(port), "--host", "127.0.0.1"]);
    assert.equal(end.code, 1);
    assert.equal(
      end.stderr.trim(),
      `http: port ${port}/tcp is already in use on 127.0.0.1 (held by pid ${pid} comm deno)`,
    );
  } finally {
    await first.close();
  }
  const bad = await runTester("http", ["abc"]);
  assert.equal(bad.code, 2);
  assert.ok(bad.stderr.startsWith("http: PORT=abc: expected a port 0-65535"), bad.stderr);
});

Deno.test({
  name: "http.ts inside a namespace on :: serves v6 and v4 clients there (--seconds ends it)",
  ignore: skipIf(nsSkipReason(), "http.ts inside a namespace"),
  async fn() {
    const ns = await NetNs.create();
    const t = Tester.start("http", ["8080", "--host", "::", "--seconds", "30"], ns);
    try {
      const ready = await t.ready();
      assert.equal(ready.port, 8080);
      assert.ok(scan(ns).some((s) => s.proto === "tcp" && s.port === 8080 && s.addr === "::"));
      for (const host of ["127.0.0.1", "[::1]"]) {
        const out = await ns.exec([
          Deno.execPath(),
          "eval",
          `console.log(await (await fetch("http://${host}:8080/", { signal: AbortSignal.timeout(5000) })).text())`,
        ]);
        assert.equal(out.stdout.trim(), "Hello 8080", host);
      }
    } finally {
      await t.close();
      await ns.delete();
    }
  },
});
