/**
 * "Containers" without Docker: each is a network namespace (ip netns) with a veth link to the host, its own
 * cgroup v2 directory named like Docker's (docker-<64 hex>.scope, so portwatch attributes it for real), and an
 * /etc/netns/<ns>/hosts that resolves the seed's `listner-api` to the host side of its link.
 * @module
 */
import { cgroup2Root } from "../pipeline/scope/cgroup.ts";
import type { ContainerState } from "./state.ts";
import { sh } from "./sys.ts";

const hex = (bytes: number) =>
  Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0")).join("");

/** The cgroup v2 mount, or a clear error. */
export function cgroupRootOrThrow(): string {
  const root = cgroup2Root();
  if (!root) {
    throw new Error("no cgroup v2 hierarchy is mounted: the stack needs one to give containers a cgroup");
  }
  return root;
}

/** A free /30 in 10.231.0.0/16 (first address: host side, second: namespace side), avoiding ones in use. */
export async function freeSubnet(used: Set<string>): Promise<[string, string]> {
  const inUse = (await sh(["ip", "-o", "-4", "addr", "show"])).stdout;
  for (let i = 0; i < 16384; i++) {
    const third = Math.floor(i / 64);
    const fourth = (i % 64) * 4;
    const host = `10.231.${third}.${fourth + 1}`;
    if (used.has(host) || inUse.includes(`inet ${host}/`)) continue;
    used.add(host);
    return [host, `10.231.${third}.${fourth + 2}`];
  }
  throw new Error("no free /30 left in 10.231.0.0/16");
}

/** Create one container: namespace, link, addresses, hosts file, cgroup. */
export async function createContainer(
  prefix: string,
  name: string,
  cgroupParent: string,
  used: Set<string>,
): Promise<ContainerState> {
  const ns = `${prefix}-${name}`;
  const veth = `pw${hex(5)}`; // 12 characters: under the 15 of IFNAMSIZ
  const [hostIp, nsIp] = await freeSubnet(used);
  const containerId = hex(32);
  const cgroup = `${cgroupParent}/docker-${containerId}.scope`;
  await sh(["ip", "netns", "add", ns]);
  const state: ContainerState = {
    name,
    ns,
    veth,
    hostIp,
    nsIp,
    cgroup,
    containerId,
    watcherPid: 0,
    pids: [],
  };
  try {
    await sh(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns]);
    await sh(["ip", "addr", "add", `${hostIp}/30`, "dev", veth]);
    await sh(["ip", "link", "set", veth, "up"]);
    await sh(["ip", "netns", "exec", ns, "ip", "addr", "add", `${nsIp}/30`, "dev", "eth0"]);
    await sh(["ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up"]);
    await sh(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"]);
    await sh(["ip", "netns", "exec", ns, "ip", "route", "add", "default", "via", hostIp]);
    Deno.mkdirSync(`/etc/netns/${ns}`, { recursive: true });
    Deno.writeTextFileSync(
      `/etc/netns/${ns}/hosts`,
      `127.0.0.1 localhost\n::1 localhost\n${nsIp} ${name}\n${hostIp} listner-api listener-api\n`,
    );
    Deno.writeTextFileSync(`/etc/netns/${ns}/hostname`, `${containerId.slice(0, 12)}\n`);
    Deno.mkdirSync(cgroup, { recursive: true });
  } catch (e) {
    await removeContainer(state);
    throw e;
  }
  return state;
}

/** The command that runs `cmd` inside the container: it joins the container's cgroup, then its namespace. */
export function inContainer(c: ContainerState, cmd: string[]): string[] {
  const script = 'cg="$0"; ns="$1"; shift; echo $$ > "$cg/cgroup.procs" && exec ip netns exec "$ns" "$@"';
  return ["sh", "-c", script, c.cgroup, c.ns, ...cmd];
}

/** Undo createContainer (what exists of it); never throws. */
export async function removeContainer(c: ContainerState): Promise<void> {
  await sh(["ip", "link", "del", c.veth], { check: false }).catch(() => {});
  await sh(["ip", "netns", "del", c.ns], { check: false }).catch(() => {});
  try {
    Deno.removeSync(`/etc/netns/${c.ns}`, { recursive: true });
  } catch { /* gone */ }
  try {
    Deno.removeSync("/etc/netns"); // only when empty
  } catch { /* in use or gone */ }
  for (let i = 0; i < 100; i++) {
    try {
      Deno.removeSync(c.cgroup);
      break;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) break;
      await new Promise((r) => setTimeout(r, 50)); // EBUSY until its last process is reaped
    }
  }
}
