/**
 * The least an engine built on bpftrace can do, for the ebpf-floor benchmark: run bpftrace with the bpftrace
 * engine's program (ebpf/bpftrace_script.ts), exactly as the engine runs it, and read its stdout, and nothing
 * else: no parsing, no state, no delivery. With `--post URL`, each read that brings records is also POSTed as it
 * is (text/plain, one fetch per read, one at a time) to URL: the least delivery at the engine's cadence can
 * cost. Prints `ready` once the probes are attached and, when bpftrace ends (SIGINT or SIGTERM here stops it),
 * one JSON line with the bytes and records read and the POSTs made.
 * @module
 */
import { bpftraceScript, RS } from "../ebpf/bpftrace_script.ts";
import { ensureTracefs } from "../ebpf/tracefs.ts";
import { parseArgs } from "node:util";

const { values: flags } = parseArgs({ args: Deno.args, options: { post: { type: "string" } } });

const problem = await ensureTracefs();
if (problem) {
  console.error(`bpftrace_reader: ${problem}`);
  Deno.exit(1);
}
const child = new Deno.Command("bpftrace", {
  args: ["-f", "text", "-e", bpftraceScript(Deno.osRelease())],
  stdin: "null",
  stdout: "piped",
  stderr: "null",
  env: { BPFTRACE_STRLEN: "64" },
}).spawn();
const stop = () => {
  try {
    child.kill("SIGINT");
  } catch { /* gone */ }
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);

let bytes = 0;
let records = 0;
let ready = false;
let posts = 0;
let posting: Promise<unknown> = Promise.resolve();
const rs = RS.charCodeAt(0);
for await (const chunk of child.stdout) {
  bytes += chunk.length;
  const before = records;
  for (let i = chunk.indexOf(rs); i !== -1; i = chunk.indexOf(rs, i + 1)) records++;
  if (flags.post && ready && records > before) {
    const url = flags.post;
    posting = posting.then(() =>
      fetch(url, { method: "POST", headers: { "content-type": "text/plain" }, body: chunk })
        .then((r) => r.text()).then(() => posts++, () => {})
    );
  }
  if (!ready && new TextDecoder().decode(chunk).includes("Attaching")) {
    ready = true;
    console.log("ready");
  }
}
const status = await child.status;
await posting;
console.log(JSON.stringify({ bytes, records, posts, bpftrace: status.signal ?? status.code }));
