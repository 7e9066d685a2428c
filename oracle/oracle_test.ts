/**
 * The oracle test (issue 17): for each engine, a seeded random workload of holder processes in a network
 * namespace of its own, and after every step the listener's open-port table (`GET /ports`) must agree with
 * iproute2's `ss -Hlntup` inside the namespace, per (proto, port): the port, the pids holding it and the
 * addresses it is bound to, within the engine's deadline (oracle/engines.ts).
 *
 * ORACLE_SEED=N replays a run (the seed is printed at the start and in every failure); ORACLE_KEEP_GOING=1
 * goes on after a failed step and fails at the end with a summary of every failure; ORACLE_ROUNDS=N (default
 * 8) sets the length; ORACLE_VERBOSE=1 prints every step.
 * @module
 */
import { skipIf } from "../testing/netns.ts";
import { type EngineCase, ENGINES } from "./engines.ts";
import { awaitAgreement, remainingSignatures } from "./agree.ts";
import { execute } from "./execute.ts";
import { HolderPool, pythonExecutable } from "./holders.ts";
import { Lab } from "./lab.ts";
import {
  actionTag,
  failureMessage,
  latencyText,
  type StepFailure,
  type StepRecord,
  summarize,
} from "./report.ts";
import { chooseSeed, Rng } from "./rng.ts";
import { type Action, Workload } from "./workload.ts";

const SEED = chooseSeed(Deno.env.get("ORACLE_SEED"));
const KEEP_GOING = Deno.env.get("ORACLE_KEEP_GOING") === "1";
const VERBOSE = Deno.env.get("ORACLE_VERBOSE") === "1";
const ROUNDS = Number(Deno.env.get("ORACLE_ROUNDS") || 8);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error(`ORACLE_ROUNDS: expected a positive integer`);
/** Random steps per round; each round ends with a step that closes a random half of the sockets. */
const STEPS_PER_ROUND = 8;
/** Few ports, so that sockets share ports (other addresses, reuseport twins) and collide. */
const PORTS = [20100, 20101, 20102, 20103, 20104, 20105];
const MAX_PROCS = 6;
/** bpftrace compiles its script first: a start-up may take a while on a loaded machine. */
const READY_MS = 40_000;

console.log(`oracle seed: ${SEED} (replay with ORACLE_SEED=${SEED})`);

async function runOracle(engine: EngineCase): Promise<void> {
  const started = performance.now();
  const dir = await Deno.makeTempDir({ prefix: "portwatch-oracle-" });
  const slug = engine.name.replace(/[^a-z]+/gi, "-").replace(/-$/, "");
  const hostName = `oracle-${slug}-${crypto.randomUUID().slice(0, 8)}`;
  const rerun = `ORACLE_SEED=${SEED} deno test -A oracle/oracle_test.ts --filter '${engine.name}'`;
  const tag = `oracle [${engine.name}] seed=${SEED}`;
  let lab: Lab | undefined;
  let pool: HolderPool | undefined;
  try {
    lab = await Lab.create(dir, hostName);
    await lab.startListener();
    pool = HolderPool.create(dir, (cmd) => lab!.ns.wrap(cmd), await pythonExecutable());
    await lab.startWatcher(engine, READY_MS);
    console.log(
      `${tag}: watching after ${
        Math.round(performance.now() - started)
      } ms; deadline ${engine.deadlineMs} ms`,
    );

    const workload = new Workload(new Rng(SEED), { ports: PORTS, maxProcs: MAX_PROCS });
    const pids = new Map<number, number>();
    const steps: StepRecord[] = [];
    const failures: StepFailure[] = [];
    const latencies: number[] = [];
    let carried = new Set<string>();
    /** One step: `next()` (`times` over, each on the model as the one before left it), then the check. */
    const step = async (label: string, next: () => Action[], times = 1) => {
      const texts: string[] = [];
      const tags: string[] = [];
      for (let i = 0; i < times; i++) {
        for (const a of next()) {
          texts.push((await execute(a, workload, pool!, pids)).text);
          tags.push(actionTag(a));
        }
      }
      const t0 = performance.now();
      const record = { label, actions: texts, tags };
      const out = await awaitAgreement(lab!, pool!.pids, record, t0, engine.deadlineMs, carried);
      steps.push(record);
      if (VERBOSE) {
        const how = out.ok ? `agreed in ${Math.round(out.latencyMs)} ms` : "DISAGREED";
        console.log(`  ${label}: ${texts.join("; ") || "(nothing)"} -> ${how}`);
      }
      if (out.ok) {
        latencies.push(out.latencyMs);
        carried = new Set();
        return;
      }
      failures.push(out.failure);
      const message = failureMessage(engine.name, SEED, out.failure, steps.slice(-6, -1), rerun);
      if (!KEEP_GOING) throw new Error(message);
      console.log(message);
      carried = await remainingSignatures(lab!, out.failure.want);
    };

    await step("0.0", () => []); // nothing open: the namespace holds no socket, the listener no port
    for (let r = 1; r <= ROUNDS; r++) {
      for (let s = 1; s <= STEPS_PER_ROUND; s++) {
        await step(`${r}.${s}`, () => workload.nextStep(), workload.stepLength());
      }
      await step(`${r}.half`, () => workload.closeHalf());
    }
    await step("end", () => workload.endAll()); // every holder gone: every port closed

    const took = Math.round((performance.now() - started) / 100) / 10;
    console.log(`${tag}: ${steps.length} steps in ${took} s; ${latencyText(latencies)}`);
    if (failures.length > 0) {
      throw new Error(
        `${tag}: ${failures.length} of ${steps.length} steps did not agree with ss in time:\n  ` +
          summarize(failures).join("\n  ") + `\nfirst failure:\n` +
          failureMessage(engine.name, SEED, failures[0], [], rerun),
      );
    }
  } finally {
    await pool?.close();
    await lab?.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

for (const engine of ENGINES) {
  Deno.test({
    name: `oracle: ${engine.name} agrees with ss -Hlntup`,
    ignore: skipIf(engine.skip(), `oracle: ${engine.name}`),
    fn: () => runOracle(engine),
  });
}
