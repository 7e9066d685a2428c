/**
 * netlink vs /proc/net scans: on this host as it is, and (as root) in a namespace holding 300 listeners, 300
 * bound UDP sockets and 2000 established TCP sockets, which /proc/net/tcp lists and sock_diag skips.
 * Run: deno bench --allow-all sources/scan_bench.ts
 * @module
 */
import { NetlinkSource } from "./netlink.ts";
import { ProcNetSource } from "./proc_net.ts";
import { type Holder, NetNs, netnsSkipReason } from "../testing/netns.ts";

const hostNetlink = new NetlinkSource();
const hostProc = new ProcNetSource();
const hostCount = hostNetlink.scan().length;

Deno.bench(`netlink scan, this host (${hostCount} sockets)`, { group: "host", baseline: true }, () => {
  hostNetlink.scan();
});
Deno.bench(`/proc/net scan, this host (${hostCount} sockets)`, { group: "host" }, () => {
  hostProc.scan();
});

const skip = netnsSkipReason();
if (skip !== undefined) {
  console.log(`skipping the loaded-namespace benches: ${skip}`);
} else {
  const ns = await NetNs.create();
  let holder: Holder;
  try {
    holder = await ns.holder({
      sockets: [
        { proto: "tcp", host: "127.0.0.1", count: 300 },
        { proto: "udp", host: "::1", count: 300 },
        { proto: "tcp", host: "0.0.0.0", connect: 1000 },
      ],
    });
  } catch (e) {
    await ns.delete();
    throw e;
  }
  // benches have no teardown: kill the holder and delete the namespace when the process ends
  globalThis.addEventListener("unload", () => {
    try {
      Deno.kill(holder.pid, "SIGKILL");
    } catch { /* gone */ }
    new Deno.Command("ip", { args: ["netns", "del", ns.name], stdout: "null", stderr: "null" }).outputSync();
  });
  const nl = new NetlinkSource({ netns: ns.path });
  const proc = new ProcNetSource({ root: `/proc/${holder.pid}/net` });
  const label = "601 listening + 2000 established";
  Deno.bench(`netlink scan, netns (${label})`, { group: "loaded", baseline: true }, () => {
    nl.scan();
  });
  Deno.bench(`/proc/net scan, netns (${label})`, { group: "loaded" }, () => {
    proc.scan();
  });
}
