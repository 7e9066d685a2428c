"""Oracle workload holder: a process (started inside the test's network namespace) that opens, shares and
closes sockets on command. It connects to the test's control socket (a Unix socket path, argv[1]), says
hello with its pid, then serves one JSON command per line, one JSON reply per line:

  {"id": 1, "op": "open", "sid": 3, "proto": "tcp"|"udp", "host": "::", "port": 20100,
   "v6only": true|false|null, "reuseport": true|false}   -> {"id": 1, "ok": true} or ok false + errno
  {"id": 2, "op": "close", "sid": 3}                      -> this process's copy only
  {"id": 3, "op": "fork"}                                 -> {"ok": true, "child": PID}; the child keeps every
                                                             socket and says hello on a connection of its own
  {"id": 4, "op": "connect", "sid": 9, "proto": "tcp", "host": "127.0.0.1", "port": 20100}
                                                          -> a client socket (TCP established, UDP connected)
  {"id": 5, "op": "exit"}                                 -> exits at once, holding its sockets (no reply)

It exits when the control connection ends (the test went away) and after 240 s whatever happens.
"""
import errno
import json
import os
import signal
import socket
import sys

CTL = sys.argv[1]
socks = {}


def connect_ctl(parent):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(CTL)
    c.sendall((json.dumps({"hello": os.getpid(), "parent": parent}) + "\n").encode())
    return c, c.makefile("r", encoding="utf-8")


def reply(c, msg):
    c.sendall((json.dumps(msg) + "\n").encode())


def open_socket(cmd):
    fam = socket.AF_INET6 if ":" in cmd["host"] else socket.AF_INET
    typ = socket.SOCK_STREAM if cmd["proto"] == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(fam, typ)
    try:
        if typ == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if cmd.get("reuseport"):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if fam == socket.AF_INET6 and cmd.get("v6only") is not None:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if cmd["v6only"] else 0)
        s.bind((cmd["host"], cmd["port"]))
        if typ == socket.SOCK_STREAM:
            s.listen(64)
    except OSError:
        s.close()
        raise
    return s


def client_socket(cmd):
    fam = socket.AF_INET6 if ":" in cmd["host"] else socket.AF_INET
    typ = socket.SOCK_STREAM if cmd["proto"] == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(fam, typ)
    s.settimeout(2)
    try:
        s.connect((cmd["host"], cmd["port"]))
    except OSError:
        s.close()
        raise
    return s


def serve(c, f):
    for line in f:
        cmd = json.loads(line)
        op = cmd["op"]
        out = {"id": cmd["id"], "ok": True}
        try:
            if op == "open":
                socks[cmd["sid"]] = open_socket(cmd)
            elif op == "connect":
                socks[cmd["sid"]] = client_socket(cmd)
            elif op == "close":
                s = socks.pop(cmd["sid"], None)
                if s is None:
                    raise OSError(errno.EBADF, "no such socket in this process")
                s.close()
            elif op == "exit":
                os._exit(0)
            elif op == "fork":
                child = os.fork()
                if child == 0:
                    return "child"
                out["child"] = child
            elif op != "ping":
                raise ValueError("unknown op " + op)
        except OSError as e:
            out = {"id": cmd["id"], "ok": False, "errno": errno.errorcode.get(e.errno, str(e.errno)), "error": str(e)}
        reply(c, out)
    return "eof"


def main():
    signal.alarm(240)  # never outlive a test run by long
    c, f = connect_ctl(None)
    while True:
        if serve(c, f) == "eof":
            os._exit(0)
        # The forked child: drop the parent's control connection (its copy only), open its own.
        parent = os.getppid()
        f.close()
        c.close()
        signal.alarm(240)
        c, f = connect_ctl(parent)


main()
