/**
 * Test helper: a process that opens sockets inside another network namespace while it stays in its own, as
 * dockerd does for a container's embedded DNS (127.0.0.11): python3 enters the namespace with setns(2), opens
 * the sockets, and returns to its own namespace before it reports. Its /proc/<pid>/ns/net is then its own while
 * the sockets live in the other one: a runtime-owned socket. Needs root (setns into another namespace).
 * @module
 */
import { endReporter, startReporter } from "./netns.ts";

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
    const { child, report, stdin, stderr } = await startReporter<
      { pid: number; tcp: OpenedSocket; udp: OpenedSocket }
    >(["python3", "-c", PY, nsPath, addr], "runtime holder", timeoutMs);
    return new RuntimeHolder(child, report.pid, report.tcp, report.udp, stdin, stderr);
  }

  /** End it and wait until it is gone (idempotent). */
  async close(): Promise<void> {
    await endReporter(this.child, this.stdin, this.stderr, "the runtime holder");
  }
}
