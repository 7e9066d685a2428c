/**
 * Oracle: the test bench of one engine case. A network namespace of its own linked to the host by a veth pair
 * (a namespace cannot reach the host's loopback, so the listener binds the host end of the link, which only
 * the host and this namespace reach), the real listener on the host, and the real watcher inside the
 * namespace. {@link Lab.close} undoes all of it, whatever state it is in.
 * @module
 */
import { NetNs, run } from "../testing/netns.ts";
import { type ListenerProc, startListener } from "../testing/listener.ts";
import { WatcherProc } from "../watcher/testing/watcher_proc.ts";
import { commonEnv, type EngineCase } from "./engines.ts";
import type { PortsAnswer } from "./port_table.ts";

const REPO = new URL("../", import.meta.url).pathname;

const hex = (bytes: number) =>
  Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0")).join("");

/** A random /30 in 10.232.0.0/16 not on any interface here: [host end, namespace end]. */
async function freeSubnet(): Promise<[string, string]> {
  const inUse = (await run(["ip", "-o", "-4", "addr", "show"])).stdout;
  for (let i = 0; i < 100; i++) {
    const [a, b] = crypto.getRandomValues(new Uint8Array(2));
    const base = `10.232.${a}.${b & 0xfc}`;
    const host = `10.232.${a}.${(b & 0xfc) + 1}`;
    if (!inUse.includes(`inet ${host}/`) && !inUse.includes(`inet ${base}/`)) {
      return [host, `10.232.${a}.${(b & 0xfc) + 2}`];
    }
  }
  throw new Error("no free /30 found in 10.232.0.0/16");
}

/** The namespace, the listener and the watcher of one engine case. */
export class Lab {
  listener?: ListenerProc;
  watcher?: WatcherProc;
  #closed = false;

  private constructor(
    readonly ns: NetNs,
    readonly veth: string,
    readonly hostIp: string,
    readonly dir: string,
    /** The watcher's HOST_NAME: the listener's /ports is filtered by it. */
    readonly hostName: string,
  ) {}

  /** A namespace with loopback up and a veth link to the host; the temporary directory `dir` is the lab's. */
  static async create(dir: string, hostName: string): Promise<Lab> {
    const ns = await NetNs.create();
    const veth = `pwo${hex(5)}`; // 13 characters: under the 15 of IFNAMSIZ
    let lab: Lab | undefined;
    try {
      const [hostIp, nsIp] = await freeSubnet();
      lab = new Lab(ns, veth, hostIp, dir, hostName);
      await run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns.name]);
      await run(["ip", "addr", "add", `${hostIp}/30`, "dev", veth]);
      await run(["ip", "link", "set", veth, "up"]);
      await ns.exec(["ip", "addr", "add", `${nsIp}/30`, "dev", "eth0"]);
      await ns.exec(["ip", "link", "set", "eth0", "up"]);
      return lab;
    } catch (e) {
      if (lab) await lab.close();
      else await ns.delete();
      throw e;
    }
  }

  /** Start the listener on the host end of the link (any port, no fsync: the test reads its memory). */
  async startListener(): Promise<ListenerProc> {
    this.listener = await startListener(`${this.dir}/portwatcher.log`, {
      args: ["--host", this.hostIp, "--fsync", "0"],
      env: { LISTENER_TOKEN: "", LOG_LEVEL: "warning" },
      stderr: "tail",
    });
    return this.listener;
  }

  /** Start the engine inside the namespace; resolves once it logs that it watches (throws if it exits). */
  async startWatcher(engine: EngineCase, readyMs: number): Promise<WatcherProc> {
    const env = { ...commonEnv(this.listener!.url, this.hostName, this.dir), ...engine.env };
    const w = WatcherProc.start(env, this.ns, [], `${REPO}${engine.program}`);
    this.watcher = w;
    const exited = w.child.status.then((s) => {
      throw new Error(
        `the ${engine.name} watcher exited (${s.code}) before watching:\n${w.stderr.join("\n")}`,
      );
    });
    await Promise.race([w.waitLog(engine.ready, readyMs), exited]);
    return w;
  }

  /** `ss -Hlntup` inside the namespace. */
  async ss(): Promise<string> {
    return (await this.ns.exec(["ss", "-Hlntup"])).stdout;
  }

  /** The listener's open ports of this lab's watcher. */
  async ports(): Promise<PortsAnswer> {
    const res = await fetch(`${this.listener!.url}/ports?host=${encodeURIComponent(this.hostName)}`);
    if (!res.ok) throw new Error(`GET /ports: ${res.status} ${await res.text()}`);
    return await res.json() as PortsAnswer;
  }

  /** Every process in the namespace (`ip netns pids`). */
  async pidsInNs(): Promise<number[]> {
    const out = await run(["ip", "netns", "pids", this.ns.name], { check: false });
    return out.stdout.split("\n").filter((l) => /^\d+$/.test(l.trim())).map(Number);
  }

  /**
   * Stop the watcher and the listener, SIGKILL whatever still runs in the namespace, remove the link and the
   * namespace. Never throws; idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.watcher?.stop("SIGTERM").catch(() => this.watcher?.stop("SIGKILL").catch(() => {}));
    await this.listener?.stop().catch(() => this.listener?.kill9().catch(() => {}));
    for (const pid of await this.pidsInNs().catch(() => [])) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    }
    await run(["ip", "link", "del", this.veth], { check: false }).catch(() => {});
    await this.ns.delete().catch(() => {});
  }
}
