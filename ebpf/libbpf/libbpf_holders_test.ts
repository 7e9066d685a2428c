/**
 * The native programs (portwatch.bpf.c) follow the holders of sockets (fork, close, dup, exec), with real
 * processes: the libbpf source's events applied to a ledger in this process, as the engine applies them (see
 * testing/libbpf.ts), in the scenarios shared with the bpftrace program (ebpf/testing/holders_steps.ts) and in
 * its own. Needs root, network namespaces, python3 and what the engine needs (libbpf.so.1, BTF); skips and says
 * why otherwise.
 */
import assert from "node:assert/strict";
import { waitUntil } from "../../infra/wait.ts";
import { LIBBPF, startLibbpfLedgerHarness } from "./testing/libbpf.ts";
import {
  adoptionTest,
  BIND,
  childExecs,
  dupThenClose,
  FORK,
  forkAndClose,
  type HolderStep,
  holdersTest,
  processExecs,
  reusePortTwins,
} from "../testing/holders_steps.ts";

/**
 * close_range(2) closes fds without a close() each: its record reads as an exec's (the holder's fds read again).
 */
const closeRange: HolderStep = {
  name: "close_range() of a UDP socket's fd: the socket ends, though no close() named it",
  async fn({ h, start, until }) {
    const py = await start();
    await py.do(`${BIND("u", 8361)}\n${BIND("v", 8362)}\nout = [u.fileno(), v.fileno()]`);
    await until("bound", "udp", 8361, [py.pid]);
    // os.closerange is close_range(2) on Linux (Python 3.10+); the socket objects keep their (stale) fds.
    await py.do("os.closerange(u.fileno(), u.fileno() + 1); u.detach()");
    await waitUntil("the close_range record", () => h.eventsOf(py.pid).some((e) => e.kind === "exec"));
    await until("gone with the close_range", "udp", 8361, undefined);
    await until("the other socket stays", "udp", 8362, [py.pid]);
    assert.ok(!h.eventsOf(py.pid).some((e) => e.kind === "close"), "no close() was made");
  },
};

/** The programs follow the processes that hold sockets, not every fork on the host. */
const onlyHolders: HolderStep = {
  name: "only holders are followed: a fork before the first bind makes no record, one after it does",
  async fn({ h, start, until }) {
    const py = await start();
    const before = await py.do(FORK) as number;
    py.pids.push(before);
    await py.do(BIND("u", 8351));
    const after = await py.do(FORK) as number;
    py.pids.push(after);
    // One ring, in order: once the later fork is read, the earlier one would have been read too.
    await waitUntil("the holder's fork", () => h.eventsOf(after).some((e) => e.kind === "fork"));
    assert.deepEqual(h.eventsOf(before), [], "a process holding nothing is not followed");
    await until("the child inherits", "udp", 8351, [py.pid, after].sort((x, y) => x - y));
    assert.ok(h.eventsOf(py.pid).some((e) => e.kind === "bind" && e.port === 8351));
  },
};

// Only the test namespace's sockets (kernel-side filter); forks, execs and exits are the holders'.
holdersTest(LIBBPF, (netns) => startLibbpfLedgerHarness({ netns }), [
  forkAndClose,
  dupThenClose,
  childExecs,
  processExecs,
  closeRange,
  reusePortTwins,
  onlyHolders,
]);

adoptionTest(LIBBPF);
