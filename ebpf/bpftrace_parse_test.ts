import assert from "node:assert/strict";
import { parseBpftraceLine, parseRecord } from "./bpftrace_parse.ts";

const RS = "\x1e";

Deno.test("bpftrace records: every kind, IPv4 and IPv6", () => {
  // 0x0100007f is 127.0.0.1 as skc_rcv_saddr reads on little-endian
  assert.deepEqual(parseRecord("L 8123456789012345 42 3 0xffff8881 9001 8080 2 6 4026531840 16777343", 5), {
    ts: 5,
    kts: 8123456789012345,
    kind: "listen",
    pid: 42,
    proto: "tcp",
    fd: 3,
    sk: "0xffff8881",
    inode: 9001,
    port: 8080,
    family: 4,
    addr: "127.0.0.1",
    netns: 4026531840,
  });
  const b6 = parseRecord("B 8123456789012345 7 4 0xffff8882 9002 5353 10 17 4026531840 0 ::1", 5);
  assert.equal(b6?.kind, "bind");
  assert.equal(b6?.proto, "udp");
  assert.equal(b6?.family, 6);
  assert.equal(b6?.addr, "::1");
  assert.deepEqual(parseRecord("LF 8123456789012345 42 3 -98", 1), {
    ts: 1,
    kts: 8123456789012345,
    kind: "listen",
    pid: 42,
    proto: "tcp",
    fd: 3,
    failed: true,
  });
  assert.deepEqual(parseRecord("U 8123456789012345 0 0xffff8881 8080 4026531840", 1), {
    ts: 1,
    kts: 8123456789012345,
    kind: "unlisten",
    pid: 0,
    proto: "tcp",
    sk: "0xffff8881",
    port: 8080,
    netns: 4026531840,
  });
  assert.deepEqual(parseRecord("C 8123456789012345 7 4 0xffff8882 9002 1", 1), {
    ts: 1,
    kts: 8123456789012345,
    kind: "close",
    pid: 7,
    fd: 4,
    sk: "0xffff8882",
    inode: 9002,
    last: true,
  });
  assert.equal(
    parseRecord("C 8123456789012345 7 4 0xffff8882 9002 0", 1)?.last,
    false,
    "another fd holds it",
  );
  assert.equal(
    parseRecord("C 8123456789012345 7 4 0xffff8882 9002", 1)?.last,
    undefined,
    "no flag: the ledger takes it for the last, as before",
  );
  assert.deepEqual(parseRecord("F 8123456789012345 7 8", 1), {
    ts: 1,
    kts: 8123456789012345,
    kind: "fork",
    pid: 7,
    childPid: 8,
  });
  assert.deepEqual(parseRecord("E 8123456789012345 7", 1), {
    ts: 1,
    kts: 8123456789012345,
    kind: "exec",
    pid: 7,
  });
  assert.deepEqual(parseRecord("X 8123456789012345 7", 1), {
    ts: 1,
    kts: 8123456789012345,
    kind: "exit",
    pid: 7,
  });
});

Deno.test("bpftrace records: odd input is not an event", () => {
  for (
    const bad of [
      "",
      "L",
      "L x",
      "L 1 2 3 4",
      "Q 1 1",
      "F 1 1",
      "U 1 1",
      "C 1 1 2",
      "X",
      "X 1",
      "X x 1",
      "E",
      "E x 1",
      '{"k":"L"}',
    ]
  ) {
    assert.equal(parseRecord(bad, 0), undefined, JSON.stringify(bad));
  }
});

Deno.test("bpftrace lines: several records per line, the attach line, other text", () => {
  const line = parseBpftraceLine(`X 5 1${RS}F 6 1 2${RS}junk${RS}X 7 3${RS}`, 9);
  assert.deepEqual(line.events.map((e) => [e.kind, e.pid]), [["exit", 1], ["fork", 1], ["exit", 3]]);
  assert.deepEqual(line.other, ["junk"]);
  assert.deepEqual(parseBpftraceLine("Attaching 12 probes...", 0), { events: [], other: [], attached: 12 });
  assert.deepEqual(parseBpftraceLine("", 0), { events: [], other: [] });
  assert.deepEqual(parseBpftraceLine("some warning", 0).other, ["some warning"]);
  // a record cut at the end of a line (not expected: bpftrace writes whole lines) is reported, not parsed
  assert.deepEqual(parseBpftraceLine(`X 5 1${RS}X 6 2`, 0).other, ["X 6 2"]);
});
