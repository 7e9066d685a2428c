/** Reading a process's output line by line: bpftrace, Tracee, and the programs tests start. */

const MAX_LINE = 16 * 1024 * 1024;

/** Lines of a byte stream ("\n" or "\r\n"), the last one even without a newline; over-long lines are cut. */
export async function* readLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buf = "";
  let dropping = false;
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    let start = 0;
    let nl: number;
    while ((nl = buf.indexOf("\n", start)) !== -1) {
      const line = buf.slice(start, nl);
      start = nl + 1;
      if (dropping) dropping = false;
      else yield line.endsWith("\r") ? line.slice(0, -1) : line;
    }
    buf = buf.slice(start);
    if (buf.length > MAX_LINE) {
      // Keep memory bounded: the rest of this line is dropped; the cut part is yielded so it gets counted.
      if (!dropping) yield buf.slice(0, 200);
      dropping = true;
      buf = "";
    }
  }
  if (buf !== "" && !dropping) yield buf.endsWith("\r") ? buf.slice(0, -1) : buf;
}
