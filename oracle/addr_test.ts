import assert from "node:assert/strict";
import { canonicalSsAddr, parseIPv4, parseIPv6 } from "./addr.ts";
import { formatIPv6 } from "../sources/socket.ts";

Deno.test("addr: ss's address forms in the project's canonical text", () => {
  assert.deepEqual(canonicalSsAddr("0.0.0.0"), { addr: "0.0.0.0", family: 4 });
  assert.deepEqual(canonicalSsAddr("127.0.0.1"), { addr: "127.0.0.1", family: 4 });
  assert.deepEqual(canonicalSsAddr("*"), { addr: "::", family: 6 });
  assert.deepEqual(canonicalSsAddr("[::]"), { addr: "::", family: 6 });
  assert.deepEqual(canonicalSsAddr("[::1]"), { addr: "::1", family: 6 });
  assert.deepEqual(canonicalSsAddr("[::ffff:127.0.0.1]"), { addr: "::ffff:127.0.0.1", family: 6 });
  assert.deepEqual(canonicalSsAddr("[FE80:0:0:0:0:0:0:1]%eth0"), {
    addr: "fe80::1",
    family: 6,
    iface: "eth0",
  });
  assert.deepEqual(canonicalSsAddr("127.0.0.53%lo"), { addr: "127.0.0.53", family: 4, iface: "lo" });
  assert.deepEqual(canonicalSsAddr("2001:db8::1"), { addr: "2001:db8::1", family: 6 });
  assert.throws(() => canonicalSsAddr("[nope]"), /IPv6/);
  assert.throws(() => canonicalSsAddr("host"), /address/);
});

Deno.test("addr: IPv6 and IPv4 text parse to their bytes", () => {
  assert.deepEqual(parseIPv6("::"), new Array(16).fill(0));
  assert.deepEqual(parseIPv6("::1"), [...new Array(15).fill(0), 1]);
  assert.deepEqual(parseIPv6("::ffff:127.0.0.1"), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 127, 0, 0, 1]);
  assert.equal(formatIPv6(parseIPv6("2001:db8:0:0:1:0:0:1")!), "2001:db8::1:0:0:1");
  assert.equal(formatIPv6(parseIPv6("1:2:3:4:5:6:7:8")!), "1:2:3:4:5:6:7:8");
  assert.equal(formatIPv6(parseIPv6("64:ff9b::1.2.3.4")!), "64:ff9b::102:304");
  for (const bad of ["1::2::3", "1:2:3", "12345::", "1:2:3:4:5:6:7:8:9", "::1.2.3", "g::"]) {
    assert.equal(parseIPv6(bad), undefined, bad);
  }
  assert.deepEqual(parseIPv4("10.0.0.255"), [10, 0, 0, 255]);
  assert.equal(parseIPv4("256.0.0.1"), undefined);
  assert.equal(parseIPv4("1.2.3"), undefined);
});
