/**
 * Test helper: a process that opens sockets inside another network namespace while it stays in its own, as
 * dockerd does for a container's embedded DNS (127.0.0.11): python3 enters the namespace with setns(2), opens
 * the sockets, and returns to its own namespace before it reports. Its /proc/<pid>/ns/net is then its own while
 * the sockets live in the other one: a runtime-owned socket. Needs root (setns into another namespace).
 * @module
 */
import { withDeadline } from "./netns.ts";

const PY = String.raw`
import ctypes, json, os, signal, socket, sys
signal.alarm(300)  # never outlive a test run by long
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000
def setns(fd):
    if libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "setns: " + os.strerror(e))
own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
target = os.open(sys.argv[1], os.O_RDONLY)
setns(target)
t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind((sys.argv[2], 0))
t.listen(64)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind((sys.argv[2], 0))
setns(own)
ino = lambda s: os.fstat(s.fileno()).st_ino
print(json.dumps({"pid": os.getpid(), "tcp": {"port": t.getsockname()[1], "inode": ino(t)},
                  "udp": {"port": u.getsockname()[1], "inode": ino(u)}}), flush=True)
for line in sys.stdin:
    if line.strip() == "exit": break
os._exit(0)
`;

/** One socket the holder opened. */
export interface OpenedSocket {
  port: number;
  inode: number;
}

/** A python3 process, in its own network namespace, holding a TCP listener and a UDP socket in another. */
export class RuntimeHolder {
  private constructor(
    readonly child: Deno.ChildProcess,
    /** Its pid. */
    readonly pid: number,
    /** The listening TCP socket. */
    readonly tcp: OpenedSocket,
    /** The bound UDP socket. */
    readonly udp: OpenedSocket,
    readonly stdin: WritableStreamDefaultWriter<Uint8Array>,
    readonly stderr: Promise<string>,
  ) {}

  /** Open the sockets on `addr` (default 127.0.0.11, as Docker's DNS) in the namespace at `nsPath`. */
  static async start(nsPath: string, addr = "127.0.0.11", timeoutMs = 20_000): Promise<RuntimeHolder> {
    const child = new Deno.Command("python3", {
      args: ["-c", PY, nsPath, addr],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stdin = child.stdin.getWriter();
    const stderr = new Response(child.stderr).text();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    try {
      await withDeadline(
        (async () => {
          while (!text.includes("\n")) {
            const { value, done } = await reader.read();
            if (done) break;
            text += value;
          }
        })(),
        timeoutMs,
        "the runtime holder's report",
      );
      const r = JSON.parse(text) as { pid: number; tcp: OpenedSocket; udp: OpenedSocket };
      return new RuntimeHolder(child, r.pid, r.tcp, r.udp, stdin, stderr);
    } catch (e) {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.status;
      await stdin.close().catch(() => {});
      throw new Error(
        `runtime holder failed: ${e instanceof Error ? e.message : e}; stderr: ${await stderr}`,
      );
    } finally {
      await reader.cancel().catch(() => {});
    }
  }

  /** End it and wait until it is gone (idempotent). */
  async close(): Promise<void> {
    await this.stdin.close().catch(() => {});
    try {
      await withDeadline(this.child.status, 5_000, "the runtime holder to exit");
    } catch {
      try {
        this.child.kill("SIGKILL");
      } catch { /* gone */ }
      await this.child.status;
    }
    await this.stderr;
  }
}
