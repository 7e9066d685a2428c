import assert from "node:assert/strict";
import { startListener } from "../testing/listener.ts";
import { baseUrl, eventLine, formatTable, PortsError } from "./ports_cli.ts";
import { sampleEvent, withTempDir } from "./testing.ts";
import type { OpenPort } from "./ports_state.ts";

const CLI = new URL("./ports_cli.ts", import.meta.url).pathname;

async function ports(args: string[], env: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-env", CLI, ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

Deno.test("ports: LISTENER_URL as a base or an ingest URL; a bad one is a clear error", () => {
  assert.equal(baseUrl("http://h:8080/ingest"), "http://h:8080");
  assert.equal(baseUrl(undefined), "http://127.0.0.1:8080");
  assert.throws(() => baseUrl("nope"), PortsError);
});

Deno.test("ports: the table reads like ss -ltnup", () => {
  const p = {
    host: "node-1",
    container_id: "3f4e1c2b9a7d0000",
    container_name: "web",
    netns: 1,
    proto: "tcp",
    port: 5000,
    family: 4,
    addrs: ["0.0.0.0", "::"],
    pids: [123],
    process: { comm: "node" },
  } as unknown as OpenPort;
  assert.equal(
    formatTable([p]),
    [
      "Netid  State   Local Address:Port      Host    Container  Process",
      'tcp    LISTEN  0.0.0.0:5000,[::]:5000  node-1  web        users:(("node",pid=123))',
    ].join("\n"),
  );
});

Deno.test("ports --watch lines: + open, ~ change (holders, addresses), - close (last holders)", () => {
  const e = { proto: "tcp", port: 5000, container_name: "web", addrs: ["0.0.0.0"] };
  assert.equal(eventLine({ ...e, event: "open", pids: [123] }), "+ tcp 0.0.0.0:5000 web pids 123");
  assert.equal(
    eventLine({ ...e, event: "change", pids: [456], last_pids: [123], last_addrs: ["0.0.0.0"] }),
    "~ tcp 0.0.0.0:5000 web holders 123 → 456",
  );
  assert.equal(
    eventLine({ ...e, event: "change", addrs: ["::"], last_addrs: ["0.0.0.0"], pids: [1], last_pids: [1] }),
    "~ tcp [::]:5000 web addresses 0.0.0.0 → ::",
  );
  assert.equal(
    eventLine({ ...e, event: "close", pids: [], last_pids: [456] }),
    "- tcp 0.0.0.0:5000 web pids 456",
  );
  assert.equal(eventLine({ port: 53, event: "close", host: "h", addrs: [] }), "- ? *:53 h");
  assert.equal(
    eventLine({
      ...e,
      event: "open",
      pids: [123],
      policy: { verdict: "alert", rule: "no-node-debugger", severity: "critical" },
    }),
    "+ tcp 0.0.0.0:5000 web pids 123 [critical no-node-debugger]",
  );
});

Deno.test("ports: against a real listener: table, --json, filters, token errors, unreachable", async () => {
  await withTempDir(async (dir) => {
    const l = await startListener(`${dir}/p.log`, { env: { LISTENER_FSYNC: "0", LISTENER_TOKEN: "t0k" } });
    try {
      const post = (e: Record<string, unknown>) =>
        fetch(`${l.url}/ingest`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: "Bearer t0k" },
          body: JSON.stringify(e),
        }).then((r) => r.body?.cancel());
      await post(sampleEvent({ port: 5000, container_name: "web" }));
      await post(sampleEvent({ port: 5353, proto: "udp", container_name: "dns", container_id: "aaa" }));
      const env = { LISTENER_URL: `${l.url}/ingest`, LISTENER_TOKEN: "t0k" };
      const table = await ports([], env);
      assert.equal(table.code, 0, table.stderr);
      assert.match(table.stdout, /tcp\s+LISTEN\s+0\.0\.0\.0:5000\s+node-1\s+web/);
      assert.match(table.stdout, /udp\s+UNCONN\s+0\.0\.0\.0:5353\s+node-1\s+dns/);
      const json = await ports(["--json", "--proto", "udp"], env);
      assert.deepEqual(JSON.parse(json.stdout).map((p: OpenPort) => p.port), [5353]);
      const noToken = await ports([], { LISTENER_URL: l.url });
      assert.equal(noToken.code, 1);
      assert.match(noToken.stderr, /needs a token: set LISTENER_TOKEN/);
      const wrong = await ports([], { LISTENER_URL: l.url, LISTENER_TOKEN: "nope" });
      assert.match(wrong.stderr, /refused LISTENER_TOKEN/);
      // --watch: the table, then a line per change from the live stream.
      const watch = new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-net", "--allow-env", CLI, "--watch", "--container", "web"],
        env,
        stdout: "piped",
        stderr: "null",
      }).spawn();
      const reader = watch.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let seen = "";
      const until = async (re: RegExp) => {
        const end = Date.now() + 10_000;
        while (!re.test(seen)) {
          const left = end - Date.now();
          let timer: ReturnType<typeof setTimeout> | undefined;
          const r = await Promise.race([
            reader.read(),
            new Promise<never>((_, reject) => {
              timer = setTimeout(() => reject(new Error(`timed out waiting for ${re} in ${seen}`)), left);
            }),
          ]).finally(() => clearTimeout(timer));
          if (r.done) break;
          seen += r.value;
        }
      };
      try {
        await until(/0\.0\.0\.0:5000/);
        // The port changes hands: the table's holders follow, and --watch says so.
        await post(
          sampleEvent({ port: 5000, event: "change", pids: [456], last_pids: [123], container_name: "web" }),
        );
        await until(/^~ tcp 0\.0\.0\.0:5000 web holders 123 → 456$/m);
        const now = await ports(["--port", "5000"], env);
        assert.match(
          now.stdout,
          /tcp\s+LISTEN\s+0\.0\.0\.0:5000\s+node-1\s+web\s+users:\(\("\?",pid=456\)\)/,
        );
        await post(
          sampleEvent({ port: 5000, event: "close", pids: [], last_pids: [456], container_name: "web" }),
        );
        await until(/^- tcp 0\.0\.0\.0:5000 web pids 456$/m);
      } finally {
        watch.kill("SIGTERM");
        await reader.cancel().catch(() => {});
        await watch.status;
      }
      const bad = await ports(["--port", "70000"], env);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /answered 400: port/);
    } finally {
      await l.stop();
    }
    const down = await ports([], { LISTENER_URL: "http://127.0.0.1:9" });
    assert.equal(down.code, 1);
    assert.match(down.stderr, /cannot reach the listener at http:\/\/127\.0\.0\.1:9 .*deno task start/);
  });
});
