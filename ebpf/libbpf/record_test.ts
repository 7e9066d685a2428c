/**
 * decodeRecord, pure: struct pw_record (portwatch.bpf.c) written with a DataView at the offsets of record.ts,
 * decoded as the SocketEvents the ledger applies. The offsets themselves are checked against the C struct.
 */
import assert from "node:assert/strict";
import { decodeRecord, FIELD, KIND, RECORD_SIZE } from "./record.ts";

const NOW = 1_760_000_000_000;

/** What a record holds (the fields of struct pw_record); absent fields stay 0, as the program's memset. */
interface Fields {
  ts?: bigint;
  sk?: bigint;
  ino?: bigint;
  kind: number;
  pid?: number;
  arg?: number;
  netns?: number;
  port?: number;
  family?: number;
  proto?: number;
  last?: number;
  /** The 16 address bytes (IPv4 in the first 4), network order. */
  addr?: number[];
}

/**
 * A record at `at` in a buffer of its own, seen through a DataView that starts `viewOffset` bytes into the
 * buffer (the ring's view starts at the data area, a record's data 8 bytes after its header).
 */
function record(f: Fields, at = 8, viewOffset = 16): { view: DataView; at: number } {
  const buffer = new ArrayBuffer(viewOffset + at + RECORD_SIZE + 8);
  // Garbage around and inside the record: only the fields written below may be read.
  new Uint8Array(buffer).fill(0xa5);
  const view = new DataView(buffer, viewOffset);
  new Uint8Array(buffer, viewOffset + at, RECORD_SIZE).fill(0);
  view.setBigUint64(at + FIELD.ts, f.ts ?? 0n, true);
  view.setBigUint64(at + FIELD.sk, f.sk ?? 0n, true);
  view.setBigUint64(at + FIELD.ino, f.ino ?? 0n, true);
  view.setUint32(at + FIELD.kind, f.kind, true);
  view.setUint32(at + FIELD.pid, f.pid ?? 0, true);
  view.setInt32(at + FIELD.arg, f.arg ?? 0, true);
  view.setUint32(at + FIELD.netns, f.netns ?? 0, true);
  view.setUint16(at + FIELD.port, f.port ?? 0, true);
  view.setUint8(at + FIELD.family, f.family ?? 0);
  view.setUint8(at + FIELD.proto, f.proto ?? 0);
  view.setUint8(at + FIELD.last, f.last ?? 0);
  (f.addr ?? []).forEach((b, i) => view.setUint8(at + FIELD.addr + i, b));
  return { view, at };
}

const decode = (f: Fields) => {
  const { view, at } = record(f);
  return decodeRecord(view, at, NOW);
};

const SK = 0xffff888103a4c000n;
const SK_TEXT = "0xffff888103a4c000";
const NETNS = 4026531840;
const V4_LOOPBACK = [127, 0, 0, 1];
const V6_ANY = new Array(16).fill(0);
const V6_LOOPBACK = [...new Array(15).fill(0), 1];
const V4_MAPPED_LOOPBACK = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1];
const V6_DOC = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];

Deno.test("record: the offsets and kinds of record.ts are struct pw_record's and enum pw_kind's in the C source", async () => {
  const c = await Deno.readTextFile(new URL("./portwatch.bpf.c", import.meta.url));
  const struct = /struct pw_record \{([\s\S]*?)\n\};/.exec(c)?.[1];
  assert.ok(struct, "struct pw_record in portwatch.bpf.c");
  const sizes: Record<string, number> = { __u64: 8, __s64: 8, __u32: 4, __s32: 4, __u16: 2, __u8: 1 };
  const offsets: Record<string, number> = {};
  let at = 0;
  let align = 1;
  for (const m of struct.matchAll(/^\s*(__[us]\d+)\s+(\w+)(?:\[(\d+)\])?;/gm)) {
    const size = sizes[m[1]];
    assert.ok(size, `a known type: ${m[1]}`);
    at = Math.ceil(at / size) * size; // natural alignment, as clang lays it out for BPF
    offsets[m[2]] = at;
    at += size * Number(m[3] ?? 1);
    align = Math.max(align, size);
  }
  assert.equal(Math.ceil(at / align) * align, RECORD_SIZE, "sizeof(struct pw_record)");
  for (const [name, offset] of Object.entries(FIELD)) {
    assert.equal(offsets[name], offset, `offset of ${name}`);
  }
  assert.deepEqual(
    Object.keys(offsets).filter((n) => n !== "pad").sort(),
    Object.keys(FIELD).sort(),
    "every field of the struct is decoded from its offset",
  );

  const kinds = /enum pw_kind \{([\s\S]*?)\};/.exec(c)?.[1];
  assert.ok(kinds, "enum pw_kind in portwatch.bpf.c");
  const enumValues = Object.fromEntries(
    [...kinds.matchAll(/PW_(\w+)\s*=\s*(\d+)/g)].map((m) => [m[1], Number(m[2])]),
  );
  assert.deepEqual(enumValues, { ...KIND });
});

Deno.test("record: LISTEN of IPv4 sockets: every field, the sk pointer as bpftrace prints it", () => {
  assert.deepEqual(
    decode({
      ts: 123_456_789_012_345n,
      sk: SK,
      ino: 5_123_456n,
      kind: KIND.LISTEN,
      pid: 4242,
      arg: 7,
      netns: NETNS,
      port: 8080,
      family: 4,
      proto: 6,
      addr: V4_LOOPBACK,
    }),
    {
      ts: NOW,
      kts: 123_456_789_012_345,
      kind: "listen",
      pid: 4242,
      proto: "tcp",
      fd: 7,
      sk: SK_TEXT,
      inode: 5_123_456,
      port: 8080,
      family: 4,
      addr: "127.0.0.1",
      netns: NETNS,
    },
  );
  const any = decode({ sk: SK, kind: KIND.LISTEN, pid: 1, arg: 3, port: 65535, family: 4, proto: 6 });
  assert.equal(any?.addr, "0.0.0.0");
  assert.equal(any?.port, 65535, "a port above 32767 stays unsigned");
});

Deno.test("record: LISTEN of IPv6 sockets: ::, ::1, v4-mapped and a full address", () => {
  for (
    const [addr, text] of [
      [V6_ANY, "::"],
      [V6_LOOPBACK, "::1"],
      [V4_MAPPED_LOOPBACK, "::ffff:127.0.0.1"],
      [V6_DOC, "2001:db8::10"],
    ] as const
  ) {
    const e = decode({
      ts: 1n,
      sk: SK,
      ino: 99n,
      kind: KIND.LISTEN,
      pid: 10,
      arg: 4,
      netns: NETNS,
      port: 443,
      family: 6,
      proto: 6,
      addr: [...addr],
    });
    assert.deepEqual(e, {
      ts: NOW,
      kts: 1,
      kind: "listen",
      pid: 10,
      proto: "tcp",
      fd: 4,
      sk: SK_TEXT,
      inode: 99,
      port: 443,
      family: 6,
      addr: text,
      netns: NETNS,
    }, text);
  }
});

Deno.test("record: BIND of UDP sockets (v4 and v6)", () => {
  assert.deepEqual(
    decode({
      ts: 5n,
      sk: SK,
      ino: 77n,
      kind: KIND.BIND,
      pid: 300,
      arg: 9,
      netns: NETNS,
      port: 5354,
      family: 4,
      proto: 17,
      addr: [10, 1, 2, 3],
    }),
    {
      ts: NOW,
      kts: 5,
      kind: "bind",
      pid: 300,
      proto: "udp",
      fd: 9,
      sk: SK_TEXT,
      inode: 77,
      port: 5354,
      family: 4,
      addr: "10.1.2.3",
      netns: NETNS,
    },
  );
  const v6 = decode({
    sk: SK,
    kind: KIND.BIND,
    pid: 1,
    arg: 3,
    port: 53,
    family: 6,
    proto: 17,
    addr: V6_LOOPBACK,
  });
  assert.deepEqual([v6?.kind, v6?.proto, v6?.family, v6?.addr], ["bind", "udp", 6, "::1"]);
});

Deno.test("record: LISTEN_FAILED is a failed listen, never an open", () => {
  // The program fills the socket's fields too and the error in arg: none of it makes an open.
  assert.deepEqual(
    decode({
      ts: 42n,
      sk: SK,
      ino: 8n,
      kind: KIND.LISTEN_FAILED,
      pid: 77,
      arg: -98,
      netns: NETNS,
      port: 8080,
      family: 4,
      proto: 6,
    }),
    { ts: NOW, kts: 42, kind: "listen", pid: 77, proto: "tcp", failed: true },
  );
});

Deno.test("record: UNLISTEN names the socket, its port and namespace", () => {
  assert.deepEqual(
    decode({ ts: 9n, sk: SK, kind: KIND.UNLISTEN, pid: 0, netns: NETNS, port: 3000, proto: 6 }),
    { ts: NOW, kts: 9, kind: "unlisten", pid: 0, proto: "tcp", sk: SK_TEXT, port: 3000, netns: NETNS },
  );
});

Deno.test("record: CLOSE with last 0 and 1", () => {
  for (const last of [0, 1]) {
    assert.deepEqual(
      decode({
        ts: 11n,
        sk: SK,
        ino: 123n,
        kind: KIND.CLOSE,
        pid: 55,
        arg: 6,
        netns: NETNS,
        port: 5354,
        proto: 17,
        last,
      }),
      { ts: NOW, kts: 11, kind: "close", pid: 55, fd: 6, sk: SK_TEXT, inode: 123, last: last === 1 },
    );
  }
});

Deno.test("record: CLOSE_RANGE asks, like an exec, for what the process holds now", () => {
  assert.deepEqual(decode({ ts: 4n, kind: KIND.CLOSE_RANGE, pid: 103 }), {
    ts: NOW,
    kts: 4,
    kind: "exec",
    pid: 103,
  });
});

Deno.test("record: FORK names the child; EXEC and EXIT the process", () => {
  assert.deepEqual(
    decode({ ts: 1n, kind: KIND.FORK, pid: 100, arg: 4_194_000 }),
    { ts: NOW, kts: 1, kind: "fork", pid: 100, childPid: 4_194_000 },
  );
  assert.deepEqual(decode({ ts: 2n, kind: KIND.EXEC, pid: 101 }), {
    ts: NOW,
    kts: 2,
    kind: "exec",
    pid: 101,
  });
  assert.deepEqual(decode({ ts: 3n, kind: KIND.EXIT, pid: 102 }), {
    ts: NOW,
    kts: 3,
    kind: "exit",
    pid: 102,
  });
});

Deno.test("record: an unknown kind (a newer object) decodes to undefined", () => {
  for (const kind of [0, 10, 0xffffffff]) {
    assert.equal(decode({ kind, pid: 1, sk: SK, port: 80, family: 4, proto: 6 }), undefined, `kind ${kind}`);
  }
});

Deno.test("record: 64-bit values: sk pointers as %p, inodes above 2^32, kernel times above 2^32 ns", () => {
  const sk = (v: bigint) => decode({ kind: KIND.UNLISTEN, sk: v })?.sk;
  assert.equal(sk(0xffff888103a4c000n), "0xffff888103a4c000");
  assert.equal(sk(0xffff888100000abcn), "0xffff888100000abc", "the low half keeps its leading zeros");
  assert.equal(sk(0xffffffffffffffffn), "0xffffffffffffffff");
  assert.equal(sk(0x1_0000_0000n), "0x100000000");
  assert.equal(sk(0xdeadbeefn), "0xdeadbeef", "a high half of 0 prints no zeros");

  const e = decode({ kind: KIND.CLOSE, sk: SK, ino: 2n ** 32n + 5n, ts: 2n ** 40n + 3n, arg: 3 });
  assert.equal(e?.inode, 2 ** 32 + 5);
  assert.equal(e?.kts, 2 ** 40 + 3);
  const big = decode({ kind: KIND.BIND, sk: SK, ino: 0xffff_ffffn + 1n, proto: 17, family: 4, port: 1 });
  assert.equal(big?.inode, 4_294_967_296);
});

Deno.test("record: a record read at any offset of a view that does not start its buffer", () => {
  for (const [at, viewOffset] of [[0, 0], [8, 0], [72, 8], [8, 4096]]) {
    const { view } = record(
      {
        sk: SK,
        kind: KIND.LISTEN,
        pid: 9,
        arg: 3,
        port: 22,
        family: 6,
        proto: 6,
        addr: V6_LOOPBACK,
      },
      at,
      viewOffset,
    );
    const e = decodeRecord(view, at, NOW);
    assert.deepEqual(
      [e?.pid, e?.port, e?.addr, e?.sk],
      [9, 22, "::1", SK_TEXT],
      `at ${at}, view at ${viewOffset}`,
    );
  }
});
