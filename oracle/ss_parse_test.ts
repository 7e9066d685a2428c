import assert from "node:assert/strict";
import { parseSs, parseSsLine, parseUsers, splitHostPort } from "./ss_parse.ts";

// Real `ss -Hlntup` output (iproute2 6.1) of a namespace with one socket of each kind.
const SAMPLE = `udp UNCONN 0      0                 0.0.0.0:1001 0.0.0.0:* users:(("python3",pid=22929,fd=9)) 
udp UNCONN 0      0               127.0.0.1:1002 0.0.0.0:* users:(("python3",pid=22929,fd=11))
udp UNCONN 0      0                    [::]:1003    [::]:* users:(("python3",pid=22929,fd=12))
udp UNCONN 0      0                       *:1004       *:* users:(("python3",pid=22929,fd=13))
udp UNCONN 0      0                   [::1]:1005    [::]:* users:(("python3",pid=22929,fd=14))
udp UNCONN 0      0      [::ffff:127.0.0.1]:1006       *:* users:(("python3",pid=22929,fd=15))
tcp LISTEN 0      128             127.0.0.1:1002 0.0.0.0:* users:(("python3",pid=22929,fd=4)) 
tcp LISTEN 0      128               0.0.0.0:1010 0.0.0.0:* users:(("python3",pid=22929,fd=17))
tcp LISTEN 0      128               0.0.0.0:1010 0.0.0.0:* users:(("python3",pid=22929,fd=16),("python3",pid=22930,fd=16))
tcp LISTEN 0      128    [::ffff:127.0.0.1]:1006       *:* users:(("python3",pid=22929,fd=8)) 
tcp LISTEN 0      128                     *:1004       *:* users:(("python3",pid=22929,fd=6)) 
tcp LISTEN 0      128                  [::]:1003    [::]:* users:(("python3",pid=22929,fd=5)) 
`;

Deno.test("ss: every line of real output, addresses canonical, users parsed", () => {
  const got = parseSs(SAMPLE).map((s) =>
    `${s.proto} ${s.family} ${s.addr} ${s.port} ${s.users.map((u) => `${u.name}/${u.pid}/${u.fd}`).join(",")}`
  );
  assert.deepEqual(got, [
    "udp 4 0.0.0.0 1001 python3/22929/9",
    "udp 4 127.0.0.1 1002 python3/22929/11",
    "udp 6 :: 1003 python3/22929/12",
    "udp 6 :: 1004 python3/22929/13",
    "udp 6 ::1 1005 python3/22929/14",
    "udp 6 ::ffff:127.0.0.1 1006 python3/22929/15",
    "tcp 4 127.0.0.1 1002 python3/22929/4",
    "tcp 4 0.0.0.0 1010 python3/22929/17",
    "tcp 4 0.0.0.0 1010 python3/22929/16,python3/22930/16",
    "tcp 6 ::ffff:127.0.0.1 1006 python3/22929/8",
    "tcp 6 :: 1004 python3/22929/6",
    "tcp 6 :: 1003 python3/22929/5",
  ]);
});

Deno.test("ss: only TCP LISTEN and UDP UNCONN count; bad lines throw", () => {
  assert.equal(
    parseSsLine('udp ESTAB 0 0 127.0.0.1:57749 127.0.0.1:1001 users:(("p",pid=1,fd=3))'),
    undefined,
  );
  assert.equal(parseSsLine("tcp ESTAB 0 0 127.0.0.1:5 127.0.0.1:6"), undefined);
  assert.equal(parseSsLine("raw UNCONN 0 0 0.0.0.0:255 0.0.0.0:*"), undefined);
  assert.deepEqual(parseSsLine("tcp LISTEN 0 4096 127.0.0.53%lo:53 0.0.0.0:*")?.users, []);
  assert.equal(parseSsLine("udp UNCONN 0 0 [fe80::1]%eth0:123 [::]:*")?.addr, "fe80::1");
  assert.throws(() => parseSsLine("tcp LISTEN 0 128"), /too few/);
  assert.throws(() => parseSsLine("tcp LISTEN 0 128 0.0.0.0:* 0.0.0.0:*"), /bad port/);
  assert.throws(() => parseSsLine("tcp LISTEN 0 128 0.0.0.0:70000 0.0.0.0:*"), /bad port/);
  assert.deepEqual(parseSs("\n\n"), []);
});

Deno.test("ss: users with odd process names; host and port split at the last colon", () => {
  assert.deepEqual(parseUsers('users:(("a b",pid=1,fd=2),("x\\"),(y",pid=30,fd=40))'), [
    { name: "a b", pid: 1, fd: 2 },
    { name: 'x\\"),(y', pid: 30, fd: 40 },
  ]);
  assert.deepEqual(parseUsers(""), []);
  assert.deepEqual(splitHostPort("[::1]:80"), ["[::1]", "80"]);
  assert.deepEqual(splitHostPort("*:*"), ["*", "*"]);
  assert.throws(() => splitHostPort("80"), /no port/);
});
