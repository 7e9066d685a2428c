import assert from "node:assert/strict";
import { startListener } from "../testing/listener.ts";
import { waitUntil } from "../infra/wait.ts";
import { parsePolicy } from "../policy/load.ts";
import { sampleEvent, withTempDir } from "./testing.ts";

const PORTS = new URL("./ports_cli.ts", import.meta.url).pathname;
const BASELINES = new URL("./baselines_cli.ts", import.meta.url).pathname;

async function run(cli: string, args: string[], env: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-env", cli, ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

Deno.test("deno task ports --unexpected and deno task baselines, against a listener that learns", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/policy.yaml`,
      `rules:
  - name: no-node-debugger
    match: { port: "9229", addresses: any }
    action: alert
    severity: critical
learn: { scope: image, window: 1500ms }
default: allow
`,
    );
    const l = await startListener(`${dir}/p.log`, {
      env: { LISTENER_FSYNC: "0", LISTENER_TOKEN: "t0k", POLICY_PATH: `${dir}/policy.yaml` },
    });
    const env = { LISTENER_URL: l.url, LISTENER_TOKEN: "t0k" };
    const post = (e: Record<string, unknown>) =>
      fetch(`${l.url}/ingest`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: "Bearer t0k" },
        body: JSON.stringify(e),
      }).then(async (r) => assert.equal(r.status, 200, await r.text()));
    const nginx = (port: number) => sampleEvent({ port, image: "nginx:1.25", container_name: "web" });
    try {
      await post(nginx(80));
      await post(sampleEvent({ port: 9229, image: "node:20", container_name: "api" }));
      const learning = await run(BASELINES, [], env);
      assert.equal(learning.code, 0, learning.stderr);
      assert.match(
        learning.stdout,
        /^image:nginx:1\.25@node-1 {2}image nginx:1\.25 on host node-1\n {2}learning until .*: tcp\/80/m,
      );

      // After the window, a new port of the image is unexpected.
      await waitUntil(
        "the learning windows to end",
        async () => {
          const r = await fetch(`${l.url}/baselines`, { headers: { authorization: "Bearer t0k" } });
          return ((await r.json()).scopes as { learning: boolean }[]).every((s) => !s.learning);
        },
        10_000,
        100,
      );
      await post(nginx(8080));
      const table = await run(PORTS, ["--unexpected"], env);
      assert.equal(table.code, 0, table.stderr);
      const lines = table.stdout.trim().split("\n");
      assert.match(lines[0], /Netid\s+State\s+Local Address:Port\s+Host\s+Container\s+Policy\s+Process/);
      assert.deepEqual(lines.slice(1).map((l) => l.split(/\s+/).slice(2, 6).join(" ")).sort(), [
        "0.0.0.0:8080 node-1 web warning",
        "0.0.0.0:9229 node-1 api critical",
      ]);
      // The metrics count the verdicts, and the unexpected ports open now by severity.
      const metrics = await (await fetch(`${l.url}/metrics`, { headers: { authorization: "Bearer t0k" } }))
        .text();
      assert.match(
        metrics,
        /^portwatch_listener_policy_verdicts_total\{verdict="alert",severity="critical"\} 1$/m,
      );
      assert.match(
        metrics,
        /^portwatch_listener_policy_verdicts_total\{verdict="alert",severity="warning"\} 1$/m,
      );
      assert.match(
        metrics,
        /^portwatch_listener_policy_verdicts_total\{verdict="allow",severity="none"\} 1$/m,
      );
      assert.match(metrics, /^portwatch_listener_unexpected_open_ports\{severity="critical"\} 1$/m);
      assert.match(metrics, /^portwatch_listener_unexpected_open_ports\{severity="warning"\} 1$/m);
      const alerts = await (await fetch(`${l.url}/alerts`, { headers: { authorization: "Bearer t0k" } }))
        .json();
      assert.deepEqual(alerts.alerts.map((a: { labels: { port: string } }) => a.labels.port).sort(), [
        "8080",
        "9229",
      ]);
      const all = await run(PORTS, [], env);
      assert.match(all.stdout, /0\.0\.0\.0:80\s+node-1\s+web\s+-/);

      const exported = await run(BASELINES, ["export"], env);
      assert.equal(exported.code, 0, exported.stderr);
      const policy = parsePolicy(exported.stdout, "exported.yaml");
      assert.equal(policy.verdictOf(nginx(80) as never).verdict, "allow");
      assert.equal(policy.verdictOf(nginx(8080) as never).verdict, "alert");

      const usage = await run(BASELINES, ["reset"], env);
      assert.equal(usage.code, 2);
      assert.match(usage.stderr, /reset needs the scopes to forget .* or --all/);
      const unknown = await run(BASELINES, ["reset", "image:nope@x"], env);
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /no baseline scope "image:nope@x"; GET \/baselines lists them/);
      const reset = await run(BASELINES, ["reset", "--all"], env);
      assert.equal(reset.code, 0, reset.stderr);
      assert.equal(reset.stdout.trim(), "reset 1 scope(s): image:nginx:1.25@node-1; they learn again");
      assert.equal((await run(BASELINES, [], env)).stdout.trim(), "no baselines learned yet");
      const noToken = await run(BASELINES, ["export"], { LISTENER_URL: l.url });
      assert.match(noToken.stderr, /needs a token: set LISTENER_TOKEN/);
    } finally {
      await l.stop();
    }
  });
});
