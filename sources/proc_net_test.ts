import assert from "node:assert/strict";
import dgram from "node:dgram";
import { decodeProcAddr, parseProcNet, ProcNetParseError, ProcNetSource } from "./proc_net.ts";
import { formatIPv6, type ListeningSocket, socketKey } from "./socket.ts";
import {
  type HeldSocket,
  Holder,
  NetNs,
  netnsSkipReason,
  pythonSkipReason,
  run,
  skipIf,
} from "../testing/netns.ts";

/** A node:dgram socket bound to `host`, any port (Deno.listenDatagram is unstable). */
function bindUdp(type: "udp4" | "udp6", host: string): Promise<dgram.Socket> {
  const s = dgram.createSocket({ type, ipv6Only: type === "udp6" });
  return new Promise((resolve, reject) => {
    s.once("error", reject);
    s.bind(0, host, () => resolve(s));
  });
}

const FIXTURES = new URL("./testing/fixtures/", import.meta.url);
const fixture = (name: string) => Deno.readTextFileSync(new URL(name, FIXTURES));

/** Keys without uid, to compare with what a holder reports. */
const keys = (list: readonly (ListeningSocket | HeldSocket)[]) =>
  list.map((s) => socketKey({ ...s, uid: 0 })).sort();

Deno.test("decodeProcAddr: little-endian words to canonical text", () => {
  assert.equal(decodeProcAddr("0100007F", 4), "127.0.0.1");
  assert.equal(decodeProcAddr("00000000", 4), "0.0.0.0");
  assert.equal(decodeProcAddr("281E140A", 4), "10.20.30.40");
  assert.equal(decodeProcAddr("00000000000000000000000000000000", 6), "::");
  assert.equal(decodeProcAddr("00000000000000000000000001000000", 6), "::1");
  assert.equal(decodeProcAddr("0000000000000000FFFF00000100007F", 6), "::ffff:127.0.0.1");
  assert.equal(decodeProcAddr("341200FD000000000000000078560000", 6), "fd00:1234::5678");
  assert.equal(decodeProcAddr("B80D0120000000000000000001000000", 6), "2001:db8::1");
  assert.equal(decodeProcAddr("0100007F", 6), undefined);
  assert.equal(decodeProcAddr("0100007G", 4), undefined);
});

Deno.test("formatIPv6: RFC 5952 forms as inet_ntop prints them", () => {
  const cases: [string, string][] = [
    ["00000000000000000000000000000000", "::"],
    ["00000000000000000000000000000001", "::1"],
    ["00010000000000000000000000000000", "1::"],
    ["00000000000000000000ffff7f000001", "::ffff:127.0.0.1"],
    ["00000000000000000000ffff00000000", "::ffff:0.0.0.0"],
    ["00000000000000000000000001020304", "::1.2.3.4"], // v4-compatible, as glibc and libuv print it
    ["20010db8000000000000000000000001", "2001:db8::1"],
    ["20010db8000000010001000100010001", "2001:db8:0:1:1:1:1:1"], // one zero group is not shortened
    ["20010000000000010000000000000001", "2001:0:0:1::1"], // the longest run
    ["20010db8000000000001000000000001", "2001:db8::1:0:0:1"], // the first of equal runs
    ["fe800000000000000000000000000001", "fe80::1"],
    ["0000000000000000ffff000000000001", "::ffff:0:0:1"], // not v4-mapped: ffff is in the wrong group
  ];
  for (const [hex, text] of cases) {
    const bytes = Uint8Array.from(hex.match(/../g)!, (h) => parseInt(h, 16));
    assert.equal(formatIPv6(bytes), text, hex);
  }
});

Deno.test({
  name: "formatIPv6 agrees with glibc's inet_ntop (python3) on 3000 zero-heavy addresses",
  ignore: skipIf(pythonSkipReason(), "formatIPv6 vs inet_ntop"),
  async fn() {
    const groups = [0, 0, 0, 0, 1, 0xffff, 0x7f00, 0xdb8, 0xabcd];
    const list: string[] = [];
    for (let i = 0; i < 3000; i++) {
      let hex = "";
      for (let g = 0; g < 8; g++) {
        hex += groups[Math.floor(Math.random() * groups.length)].toString(16).padStart(4, "0");
      }
      list.push(hex);
    }
    const py =
      "import socket,sys\nfor h in sys.argv[1:]: print(socket.inet_ntop(socket.AF_INET6, bytes.fromhex(h)))";
    const out = (await run(["python3", "-c", py, ...list])).stdout.trim().split("\n");
    list.forEach((hex, i) => {
      assert.equal(formatIPv6(Uint8Array.from(hex.match(/../g)!, (h) => parseInt(h, 16))), out[i], hex);
    });
  },
});

Deno.test("parseProcNet: captured fixtures give exactly the bound sockets, no established ones", () => {
  const expected = JSON.parse(fixture("expected.json")) as {
    sockets: HeldSocket[];
    connectedUdp: HeldSocket[];
    established: number[];
  };
  const parsed = [
    ...parseProcNet(fixture("tcp.txt"), "tcp", 4),
    ...parseProcNet(fixture("tcp6.txt"), "tcp", 6),
    ...parseProcNet(fixture("udp.txt"), "udp", 4),
    ...parseProcNet(fixture("udp6.txt"), "udp", 6),
  ];
  assert.deepEqual(keys(parsed), keys(expected.sockets));
  const inodes = new Set(parsed.map((s) => s.inode));
  for (const e of expected.established) assert.ok(!inodes.has(e), `established inode ${e} was reported`);
  assert.ok(parsed.every((s) => s.uid === 0));
  // the fixtures include a v4-mapped listener, a non-loopback v6 one and a dual-stack "::"
  const addrs = new Set(parsed.map((s) => s.addr));
  for (const a of ["::ffff:127.0.0.1", "fd00:1234::5678", "::", "::1", "0.0.0.0", "10.20.30.40"]) {
    assert.ok(addrs.has(a), a);
  }
});

Deno.test("parseProcNet: header, trailing whitespace, CRLF and blank lines are tolerated", () => {
  const text = [
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode   ",
    "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0 100 0 0 10 0   ",
    "",
    "   1: 00000000:0050 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 4243 1 0\r",
    "   2: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4244 1 0\r",
    "",
    "  ",
  ].join("\n");
  assert.deepEqual(parseProcNet(text, "tcp", 4), [
    { proto: "tcp", family: 4, addr: "127.0.0.1", port: 8080, inode: 4242, uid: 1000 },
    { proto: "tcp", family: 4, addr: "0.0.0.0", port: 22, inode: 4244, uid: 0 },
  ]);
  assert.deepEqual(parseProcNet("", "udp", 6), []);
  assert.deepEqual(parseProcNet(fixture("udp.txt").split("\n")[0] + "\n", "udp", 4), []);
});

Deno.test("parseProcNet: UDP keeps bound, unconnected sockets (as ss -l); connected clients are not ports", () => {
  const text = [
    "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops",
    "  1: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 11 2 0 0",
    "  2: 0100007F:9B5B 0100007F:B945 01 00000000:00000000 00:00000000 00000000     0        0 12 2 0 0",
    "  3: 00000000:0000 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 13 2 0 0",
  ].join("\n");
  assert.deepEqual(parseProcNet(text, "udp", 4).map((s) => [s.port, s.inode, s.uid]), [[53, 11, 101]]);
});

Deno.test("parseProcNet: a malformed line throws an error naming the source and the line", () => {
  const header = fixture("tcp.txt").split("\n")[0];
  const good =
    "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0";
  const bad: [string, RegExp][] = [
    ["   1: 0100007F:1F90 00000000:0000 0A", /at least 10 fields/],
    ["   1: 0100007F1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1", /local address/],
    ["   1: 0100007F:1F90 00000000:0000 0X 00000000:00000000 00:00000000 00000000 0 0 1", /state "0X"/],
    ["   1: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 abc", /inode "abc"/],
    ["   1: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 x 0 1", /uid "x"/],
    ["   1: 007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1", /8 hex digits/],
    ["garbage", /at least 10 fields/],
  ];
  for (const [line, reason] of bad) {
    assert.throws(
      () => parseProcNet([header, good, line, ""].join("\n"), "tcp", 4, "fixture/tcp"),
      (e: unknown) => {
        assert.ok(e instanceof ProcNetParseError);
        assert.match(e.message, /^fixture\/tcp: line 3 is malformed/);
        assert.match(e.message, reason);
        assert.ok(e.message.includes(JSON.stringify(line)));
        assert.equal(e.lineNumber, 3);
        return true;
      },
    );
  }
  // a v6 table with a v4-sized address
  assert.throws(() => parseProcNet(`${header}\n${good}\n`, "tcp", 6), /32 hex digits/);
});

Deno.test("ProcNetSource: finds this process's own listeners, not its established connection", async () => {
  const tcp4 = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const tcp6 = Deno.listen({ hostname: "::1", port: 0 });
  const udp4 = await bindUdp("udp4", "127.0.0.1");
  const udp6 = await bindUdp("udp6", "::");
  const client = await Deno.connect({ hostname: "127.0.0.1", port: tcp4.addr.port });
  const server = await tcp4.accept();
  try {
    const found = new ProcNetSource().scan();
    const has = (proto: string, family: number, addr: string, port: number) =>
      found.filter((s) => s.proto === proto && s.family === family && s.addr === addr && s.port === port);
    const uid = Deno.uid();
    for (
      const [proto, family, addr, port] of [
        ["tcp", 4, "127.0.0.1", tcp4.addr.port],
        ["tcp", 6, "::1", tcp6.addr.port],
        ["udp", 4, "127.0.0.1", udp4.address().port],
        ["udp", 6, "::", udp6.address().port],
      ] as const
    ) {
      const m = has(proto, family, addr, port);
      assert.equal(m.length, 1, `${proto}${family} ${addr}:${port} in ${JSON.stringify(found)}`);
      assert.equal(m[0].uid, uid);
      assert.ok(m[0].inode > 0);
    }
    assert.equal(has("tcp", 4, "127.0.0.1", client.localAddr.port).length, 0, "client end listed");
  } finally {
    client.close();
    server.close();
    tcp4.close();
    tcp6.close();
    await new Promise<void>((r) => udp4.close(r));
    await new Promise<void>((r) => udp6.close(r));
  }
});

Deno.test({
  name: "ProcNetSource: a holder's sockets (v4-mapped, dual-stack, connected UDP) with matching inodes",
  ignore: skipIf(pythonSkipReason(), "ProcNetSource vs holder"),
  async fn() {
    const h = await Holder.start({
      sockets: [
        { proto: "tcp", host: "127.0.0.1", connect: 3 },
        { proto: "tcp", host: "::ffff:127.0.0.1", connect: 1 },
        { proto: "tcp", host: "::1" },
        { proto: "udp", host: "::ffff:127.0.0.1" },
        { proto: "udp", host: "127.0.0.1", connect: 1 },
      ],
    });
    try {
      const found = new ProcNetSource({ root: `/proc/${h.pid}/net` }).scan();
      const mine = new Set([...h.report.sockets, ...h.report.connectedUdp].map((s) => s.inode));
      assert.deepEqual(keys(found.filter((s) => mine.has(s.inode))), keys(h.report.sockets));
      const inodes = new Set(found.map((s) => s.inode));
      for (const e of h.report.established) assert.ok(!inodes.has(e), `established ${e} listed`);
    } finally {
      await h.close();
    }
  },
});

Deno.test({
  name: "ProcNetSource: /proc/<pid>/net of a process in another namespace lists exactly its sockets",
  ignore: skipIf(netnsSkipReason(), "ProcNetSource in a netns"),
  async fn() {
    const ns = await NetNs.create();
    try {
      const h = await ns.holder({
        sockets: [
          { proto: "tcp", host: "0.0.0.0", connect: 5 },
          { proto: "tcp", host: "::", v6only: false },
          { proto: "udp", host: "::1" },
          { proto: "udp", host: "0.0.0.0" },
        ],
      });
      const found = new ProcNetSource({ root: `/proc/${h.pid}/net` }).scan();
      assert.deepEqual(keys(found), keys(h.report.sockets));
    } finally {
      await ns.delete();
    }
  },
});

Deno.test("ProcNetSource: a root without the tables throws", () => {
  assert.throws(() => new ProcNetSource({ root: "/nonexistent/net" }).scan(), Deno.errors.NotFound);
});
