/**
 * inode -> pids: the FFI walk of /proc vs the pure Deno one, and a cached PidResolver.resolve().
 * PW_BENCH_CONNS (default 500) loopback connections are opened first, so that /proc holds some socket fds.
 * Run: deno bench --allow-all pipeline/pid_resolver_bench.ts
 * @module
 */
import { PidResolver } from "./pid_resolver.ts";
import { walkFfi, walkPure } from "./proc_walk.ts";
import { ProcNetSource } from "../sources/proc_net.ts";

const conns = Number(Deno.env.get("PW_BENCH_CONNS") ?? 500);
const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const held: Deno.Conn[] = [];
for (let i = 0; i < conns; i++) {
  held.push(await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }));
  held.push(await listener.accept());
}
const all = walkFfi();
const fds = [...all.values()].reduce((n, pids) => n + pids.length, 0);
let procs = 0;
for (const e of Deno.readDirSync("/proc")) if (/^\d+$/.test(e.name)) procs++;
const label = `${procs} processes, ${fds} socket fds`;

Deno.bench(`walkFfi (${label})`, { group: "walk", baseline: true }, () => {
  walkFfi();
});
Deno.bench(`walkPure (${label})`, { group: "walk" }, () => {
  walkPure();
});

const inodes = new ProcNetSource().scan().map((s) => s.inode);
const ffi = new PidResolver({ walker: "ffi" });
ffi.resolve(inodes);
Deno.bench(
  `PidResolver.resolve, warm cache (${inodes.length} listening inodes)`,
  { group: "resolve" },
  () => {
    ffi.resolve(inodes);
  },
);
Deno.bench(`PidResolver.resolve, cold (ffi walk, ${inodes.length} inodes)`, { group: "resolve" }, () => {
  new PidResolver({ walker: "ffi" }).resolve(inodes);
});
