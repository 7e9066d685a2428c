/**
 * Test helpers: throw-away network namespaces (`ip netns add pwtest-<random>`) and commands run inside them.
 * Everything started here is killed and deleted by `delete()`; callers use try/finally. The socket holders are in
 * holder.ts, process helpers in process.ts (both re-exported here, where the tests have always found them).
 * @module
 */
import { Holder, type HolderSpec } from "./holder.ts";
import { type CommandResult, run } from "./process.ts";

export {
  type HeldSocket,
  Holder,
  type HolderReport,
  type HolderSocketSpec,
  type HolderSpec,
} from "./holder.ts";
export {
  type CommandResult,
  endReporter,
  type Reporter,
  run,
  startReporter,
  withDeadline,
} from "./process.ts";

/** Why tests needing root and network namespaces cannot run here, or undefined when they can. */
export function netnsSkipReason(): string | undefined {
  if (Deno.build.os !== "linux") return `network namespaces need Linux, this is ${Deno.build.os}`;
  if (Deno.uid() !== 0) {
    return `not root (uid ${Deno.uid()}): creating network namespaces needs CAP_SYS_ADMIN`;
  }
  if (!hasCommand("ip", ["-V"])) return "iproute2's `ip` is not installed";
  return pythonSkipReason();
}

/** Why tests needing python3 (the socket holder) cannot run here, or undefined when they can. */
export function pythonSkipReason(): string | undefined {
  if (Deno.build.os !== "linux") return `/proc and socket tests need Linux, this is ${Deno.build.os}`;
  return hasCommand("python3", ["-c", "pass"]) ? undefined : "python3 is not installed";
}

/** `ignore` for Deno.test: logs why the test is skipped (once per name) and returns true when it must be. */
export function skipIf(reason: string | undefined, testName: string): boolean {
  if (reason !== undefined) console.log(`skipping "${testName}": ${reason}`);
  return reason !== undefined;
}

const commandCache = new Map<string, boolean>();

function hasCommand(cmd: string, args: string[]): boolean {
  let ok = commandCache.get(cmd);
  if (ok === undefined) {
    try {
      ok = new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).outputSync().success;
    } catch {
      ok = false;
    }
    commandCache.set(cmd, ok);
  }
  return ok;
}

/** A network namespace made for one test, with its loopback up; `delete()` kills its holders and removes it. */
export class NetNs {
  readonly #holders = new Set<Holder>();

  private constructor(
    /** Its name, e.g. "pwtest-1a2b3c4d". */
    readonly name: string,
  ) {}

  /** Its bind-mount, usable with setns(2): /run/netns/NAME. */
  get path(): string {
    return `/run/netns/${this.name}`;
  }

  /** Create a namespace "pwtest-<random>" and bring its loopback up. */
  static async create(): Promise<NetNs> {
    const name = `pwtest-${crypto.randomUUID().slice(0, 8)}`;
    await run(["ip", "netns", "add", name]);
    const ns = new NetNs(name);
    try {
      await run(["ip", "-n", name, "link", "set", "lo", "up"]);
    } catch (e) {
      await ns.delete();
      throw e;
    }
    return ns;
  }

  /** `cmd` prefixed so that it runs inside the namespace. */
  wrap(cmd: string[]): string[] {
    return ["ip", "netns", "exec", this.name, ...cmd];
  }

  /** Run a command inside the namespace to completion. */
  exec(cmd: string[], options?: { check?: boolean; timeoutMs?: number }): Promise<CommandResult> {
    return run(this.wrap(cmd), options);
  }

  /** Start a socket holder inside the namespace; it is closed by {@link NetNs.delete} at the latest. */
  async holder(spec: HolderSpec): Promise<Holder> {
    const h = await Holder.start(spec, this);
    this.#holders.add(h);
    return h;
  }

  /** Kill every holder started in it and delete the namespace (idempotent). */
  async delete(): Promise<void> {
    for (const h of this.#holders) await h.close();
    this.#holders.clear();
    await run(["ip", "netns", "del", this.name], { check: false });
  }
}
