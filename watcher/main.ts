/** `deno task watch`: the polling watcher. Its socket sources are built; the scan loop and delivery are not yet. */
if (import.meta.main) {
  console.error(
    "portwatch watch: not built yet. The polling watcher's scan loop and delivery are the next piece of work;\n" +
      "today `deno task start` runs the listener, which stores events POSTed to /ingest.",
  );
  Deno.exit(1);
}
