/**
 * The listener's policy stage, started when POLICY_PATH is set: the policy file followed (policy/holder.ts),
 * the verdicts with their learned baselines (verdicts.ts), and alerts out (alerts/). A new version of the
 * file learns from the ports open now (its scopes may be new) and then recomputes the firing set.
 * @module
 */
import { dirname } from "node:path";
import { getLogger } from "@logtape/logtape";
import { PolicyHolder } from "../policy/holder.ts";
import type { Registry } from "../infra/metrics.ts";
import type { ListenerConfig } from "./config.ts";
import type { Store } from "./store_api.ts";
import { registerVerdictMetrics, Verdicts } from "./verdicts.ts";
import { type Alerts, startAlerts } from "./alerts/mod.ts";

/** The running policy stage. */
export interface PolicyStage {
  policy: PolicyHolder;
  verdicts: Verdicts;
  alerts: Alerts;
  /** Stop following the file, stop the alerts (before the store closes: the PostgreSQL queue uses it). */
  close(): Promise<void>;
}

/** Start the policy stage over `store` (`config.policyPath` set). */
export async function startPolicyStage(
  config: ListenerConfig & { policyPath: string },
  store: Store,
  registry: Registry,
): Promise<PolicyStage> {
  const log = getLogger(["portwatch", "policy"]);
  // Set once all three run: a reload before then has nothing to update.
  let reloaded: (() => void) | undefined = undefined;
  const policy: PolicyHolder = new PolicyHolder(config.policyPath, {
    loaded: (p, file) => {
      const learn = p.source.learn;
      log.info("policy {file}: {n} rule(s) in force{learning}", {
        file,
        n: p.size,
        learning: learn ? `; learning baselines per ${learn.scope} and ${learn.per} for ${learn.window}` : "",
      });
      reloaded?.();
    },
    rejected: (e) =>
      log.error("policy not used: {error}; {kept}", {
        error: e.message,
        kept: policy.policy
          ? "the last good policy stays in force"
          : "no policy is in force (every port allowed)",
      }),
  });
  await policy.start();
  const verdicts = new Verdicts({
    policy: () => policy.policy,
    store: store.baselines,
    counter: registerVerdictMetrics(registry),
    onError: (what, e) => log.warn("{what} failed: {error}", { what, error: String(e) }),
  });
  try {
    await verdicts.start();
    await verdicts.learnOpen(await store.openPorts({}));
  } catch (e) {
    verdicts.close();
    await policy.close();
    throw e;
  }
  const alerts = await startAlerts({
    store,
    evaluate: (port) => verdicts.evaluate(port),
    config: {
      alertmanagerUrl: config.alertmanagerUrl,
      webhookUrl: config.alertWebhookUrl,
      queueDir: config.alertQueueDir ?? `${dirname(config.logPath)}/alerts`,
    },
    registry,
    policyInForce: () => policy.policy !== undefined,
  });
  reloaded = () => {
    store.openPorts({})
      .then((ports) => verdicts.learnOpen(ports))
      .catch((e) => log.warn("learning from the open ports failed: {error}", { error: String(e) }))
      .finally(() => alerts.reset());
  };
  return {
    policy,
    verdicts,
    alerts,
    async close() {
      await policy.close();
      verdicts.close();
      await alerts.close();
    },
  };
}
