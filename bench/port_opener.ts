/**
 * A scheduled port opener for the watcher and eBPF benchmarks: a python3 process (inside a namespace) that opens
 * TCP listeners (or, with `proto: "udp"`, bound UDP sockets) on given ports at given moments, each held for a
 * given time, and reports when listen()/bind() returned and when close() did (time.time(), this machine's clock,
 * as the listener's `ts`). Scheduling uses the monotonic clock; the hold is measured from the moment
 * listen()/bind() returned. Items due at the same moment open back to back, as fast as python can (a burst).
 * RLIMIT_NOFILE is raised to its hard limit, so that a burst of 1,000 ports fits.
 * @module
 */
import { withDeadline } from "../testing/netns.ts";

/** One port to open: `at` seconds after the start, held `hold` seconds. */
export interface Opening {
  port: number;
  at: number;
  hold: number;
  /** "tcp" (default): bind() and listen(); "udp": bind() alone. */
  proto?: "tcp" | "udp";
}

/** What happened to one port. */
export interface Opened {
  port: number;
  /** Wall-clock ms since the epoch right after listen() (UDP: bind()) returned. */
  openMs: number;
  /** Wall-clock ms right after close(). */
  closeMs: number;
  /** Held for this long (monotonic), in ms. */
  heldMs: number;
}

const OPENER_PY = String.raw`
import heapq, json, resource, signal, socket, sys, time
signal.alarm(900)
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if hard == resource.RLIM_INFINITY or hard > soft: resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
items = json.loads(sys.stdin.readline())
start = time.monotonic() + 0.1
heap = [(it["at"], 0, i) for i, it in enumerate(items)]
heapq.heapify(heap)
socks, res = {}, [None] * len(items)
while heap:
    at, kind, i = heapq.heappop(heap)
    d = start + at - time.monotonic()
    if d > 0: time.sleep(d)
    it = items[i]
    if kind == 0:
        if it.get("proto") == "udp":
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("0.0.0.0", it["port"]))
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", it["port"]))
            s.listen(16)
        wall, mono = time.time(), time.monotonic()
        socks[i] = (s, mono)
        res[i] = {"port": it["port"], "openMs": wall * 1000}
        heapq.heappush(heap, (mono - start + it["hold"], 1, i))
    else:
        s, mono = socks.pop(i)
        s.close()
        now = time.monotonic()
        res[i]["closeMs"] = time.time() * 1000
        res[i]["heldMs"] = (now - mono) * 1000
print(json.dumps(res), flush=True)
`;

/** Run the schedule with `wrap` (e.g. an `ip netns exec NS` prefix) and return what happened, in input order. */
export async function runOpener(items: Opening[], wrap: (cmd: string[]) => string[]): Promise<Opened[]> {
  const span = Math.max(0, ...items.map((i) => i.at + i.hold));
  // The schedule goes in on stdin and the program runs from a file, not from argv: the ports' events carry the
  // owner's command line, and a burst of 1,000 ports in argv would make it ~70 KB (the program itself, 1.7 KB),
  // which no real server has, and which would be measured instead (every event ~2 KB).
  const script = await Deno.makeTempFile({ prefix: "portwatch_port_opener_", suffix: ".py" });
  await Deno.writeTextFile(script, OPENER_PY);
  const cmd = wrap(["python3", script]);
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdout: "piped",
    stderr: "piped",
    stdin: "piped",
  })
    .spawn();
  try {
    const stdin = child.stdin.getWriter();
    await stdin.write(new TextEncoder().encode(JSON.stringify(items) + "\n"));
    await stdin.close();
    const out = await withDeadline(child.output(), span * 1000 + 30_000, "the port opener");
    if (!out.success) {
      throw new Error(`port opener exited ${out.code}: ${new TextDecoder().decode(out.stderr).trim()}`);
    }
    return JSON.parse(new TextDecoder().decode(out.stdout)) as Opened[];
  } catch (e) {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await child.status;
    throw e;
  } finally {
    await Deno.remove(script).catch(() => {});
  }
}
