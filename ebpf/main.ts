/** `deno task ebpf`: the event-driven engines (bpftrace, Tracee). Not built yet. */
if (import.meta.main) {
  console.error(
    "portwatch ebpf: not built yet (bpftrace and Tracee engines come after the polling watcher).",
  );
  Deno.exit(1);
}
