/**
 * The bpftrace program follows the holders of sockets (fork, close, dup, exec), with real processes: bpftrace's
 * events applied to a ledger in this process, as the engine applies them (see testing/bpftrace.ts), in the
 * scenarios it shares with the libbpf engine (testing/holders_steps.ts). Needs root, network namespaces, python3
 * and bpftrace; skips and says why otherwise.
 */
import { BPFTRACE, startLedgerHarness } from "./testing/bpftrace.ts";
import {
  adoptionTest,
  childExecs,
  dupThenClose,
  forkAndClose,
  holdersTest,
  processExecs,
  reusePortTwins,
} from "./testing/holders_steps.ts";

// bpftrace follows every process: the harness is not told the test's namespace.
holdersTest(BPFTRACE, () => startLedgerHarness(), [
  forkAndClose,
  dupThenClose,
  childExecs,
  processExecs,
  reusePortTwins,
]);

adoptionTest(BPFTRACE);
