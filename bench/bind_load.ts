/**
 * The load generator of the eBPF benchmarks: a python3 program, run inside a namespace as
 * `python3 -c LOADGEN_PY RATE SECONDS BASE SPAN`, that does RATE bind+close per second for SECONDS (UDP bind()
 * and TCP bind()+listen() alternately, ports BASE..BASE+SPAN-1 in turn, each socket closed at once). It prints
 * `ready` before it starts and, at the end, one JSON line: count, seconds, its own user and system CPU seconds,
 * and how many binds were late.
 * @module
 */

/** The program (see the module doc). */
export const LOADGEN_PY = String.raw`
import json, os, signal, socket, sys, time
signal.alarm(600)
rate, secs, base, span = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
n = int(rate * secs)
print("ready", flush=True)
t0 = os.times()
start = time.monotonic()
late = 0
for i in range(n):
    due = start + i / rate
    d = due - time.monotonic()
    if d > 0: time.sleep(d)
    elif d < -0.01: late += 1
    port = base + (i % span)
    if i % 2 == 0:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", port))
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port))
        s.listen(16)
    s.close()
elapsed = time.monotonic() - start
t1 = os.times()
print(json.dumps({"count": n, "seconds": elapsed, "user": t1.user - t0.user, "sys": t1.system - t0.system, "late": late}), flush=True)
`;
