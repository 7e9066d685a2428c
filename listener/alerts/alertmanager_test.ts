/**
 * The end-to-end test: a real Alertmanager (v0.25, Debian's) receives the alert of an unexpected port
 * (the Node debugger, 9229 on 0.0.0.0) that a tester opens in a network namespace standing for a container,
 * seen by a real watcher inside it and stored by a real listener (POLICY_PATH, ALERTMANAGER_URL) on the host
 * end of a veth link; then sees it resolve when the port closes. Once per store: the log file, PostgreSQL.
 *
 * What Alertmanager v0.25 does on resolve: the listener POSTs the alert again with `endsAt` = the close's
 * time; `GET /api/v2/alerts` then no longer lists it: it lists only alerts whose end is still ahead (also with
 * `?active=true&silenced=true&inhibited=true&unprocessed=true`; `/api/v2/alerts/groups` drops it too). A label
 * with an empty value (`container` of a host's own port) is dropped by Alertmanager, as in Prometheus.
 */
import assert from "node:assert/strict";
import { waitUntil } from "../../infra/wait.ts";
import { NODE_DEBUGGER_POLICY } from "../../policy/testing.ts";
import { startListener } from "../../testing/listener.ts";
import { netnsSkipReason } from "../../testing/netns.ts";
import { Lab } from "../../oracle/lab.ts";
import { postgresSkipReason, startPostgres, type TestPostgres } from "../pg/testing_postgres.ts";
import { alertmanagerSkipReason, type AmAlert, startAlertmanager } from "./testing_alertmanager.ts";

const skip = netnsSkipReason() ?? alertmanagerSkipReason();
const pgSkip = skip ?? postgresSkipReason();
const HOST = "alert-host";
const CONTAINER = "debug-box";

/** One run: Alertmanager, the lab (namespace, veth, listener, watcher), the tester; all cleaned up. */
async function endToEnd(store: "file" | "postgres"): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: `portwatch-am-e2e-${store}-` });
  let pg: TestPostgres | undefined;
  let am: Awaited<ReturnType<typeof startAlertmanager>> | undefined;
  let lab: Lab | undefined;
  try {
    am = await startAlertmanager();
    const storeArgs: string[] = [];
    if (store === "postgres") {
      pg = await startPostgres();
      storeArgs.push("--store-url", await pg.createDatabase("alerts"));
    }
    await Deno.writeTextFile(`${dir}/policy.yaml`, NODE_DEBUGGER_POLICY);
    lab = await Lab.create(dir, HOST);
    lab.listener = await startListener(`${dir}/portwatcher.log`, {
      args: ["--host", lab.hostIp, "--fsync", "0", ...storeArgs],
      env: {
        LISTENER_TOKEN: "",
        LOG_LEVEL: "warning",
        POLICY_PATH: `${dir}/policy.yaml`,
        ALERTMANAGER_URL: am.url,
      },
      stderr: "tail",
    });
    const listener = lab.listener;
    await lab.startWatcher({
      name: "polling",
      program: "watcher/main.ts",
      env: { SCAN_INTERVAL: "0.1", CONTAINER_ID: "c0ffee00c0ffee00", CONTAINER_NAME: CONTAINER },
      ready: /watching this network namespace with/,
      deadlineMs: 0,
      skip: () => undefined,
    }, 20_000);
    const context = () =>
      `\nlistener:\n${listener.log()}\nalertmanager:\n${am!.log().split("\n").slice(-10).join("\n")}`;
    let seen: AmAlert[] = [];
    const ours = async () => {
      seen = await am!.alerts();
      return seen.filter((a) => a.labels.port === "9229" && a.labels.host === HOST);
    };

    // The tester: a process in the "container" listening on 0.0.0.0:9229, as `node --inspect=0.0.0.0` would.
    const tester = await lab.ns.holder({ sockets: [{ proto: "tcp", host: "0.0.0.0", port: 9229 }] });
    const active = await waitUntil(
      () => `the alert active in Alertmanager: ${JSON.stringify(seen)}${context()}`,
      async () => (await ours()).find((a) => a.status.state === "active"),
      30_000,
      100,
    );
    assert.deepEqual(active.labels, {
      alertname: "PortwatchUnexpectedPort",
      host: HOST,
      container: CONTAINER,
      port: "9229",
      proto: "tcp",
      severity: "critical",
    });
    assert.equal(active.annotations.rule, "no-node-debugger");
    assert.match(
      active.annotations.summary,
      /^tcp\/9229 open on 0\.0\.0\.0 in container debug-box on host alert-host/,
    );
    assert.ok(Date.parse(active.endsAt) > Date.now(), "active: its end is ahead");
    const listed = await (await fetch(`${listener.url}/alerts`)).json();
    assert.equal(listed.count, 1);
    assert.deepEqual(listed.alerts[0].labels, active.labels);

    // The port closes: the listener sends the resolve; Alertmanager stops listing the alert.
    await tester.close();
    await waitUntil(
      () => `the alert resolved in Alertmanager: ${JSON.stringify(seen)}${context()}`,
      async () => (await ours()).length === 0,
      30_000,
      100,
    );
    assert.equal((await (await fetch(`${listener.url}/alerts`)).json()).count, 0);
    // Counted once Alertmanager's answer is in (which may come just after the alert left its list).
    const metrics = await waitUntil("the resolve counted", async () => {
      const text = await (await fetch(`${listener.url}/metrics`)).text();
      return /alerts_sent_total\{target="alertmanager",status="resolved"\} 1\n/.test(text) && text;
    });
    assert.match(
      metrics,
      /portwatch_listener_alerts_sent_total\{target="alertmanager",status="firing"\} 1\n/,
    );
    assert.match(
      metrics,
      /portwatch_listener_alerts_sent_total\{target="alertmanager",status="resolved"\} 1\n/,
    );
    assert.match(metrics, /portwatch_listener_unexpected_open_ports\{severity="critical"\} 0\n/);
  } finally {
    await lab?.close();
    await am?.close();
    await pg?.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

Deno.test({
  name:
    "Alertmanager (real, v0.25): an unexpected port in a container fires, and resolves when it closes; file store",
  ignore: skip !== undefined,
  fn: () => endToEnd("file"),
});

Deno.test({
  name:
    "Alertmanager (real, v0.25): an unexpected port in a container fires, and resolves when it closes; PostgreSQL",
  ignore: pgSkip !== undefined,
  fn: () => endToEnd("postgres"),
});

if (skip) console.log(`alertmanager_test.ts: skipped: ${skip}`);
else if (pgSkip) console.log(`alertmanager_test.ts: PostgreSQL case skipped: ${pgSkip}`);
