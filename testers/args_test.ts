import assert from "node:assert/strict";
import { ConfigError } from "../infra/env.ts";
import {
  parseCli,
  parseCount,
  parseHost,
  parseMs,
  parsePort,
  parseProto,
  parseSecondsMs,
  parseSignal,
  UsageError,
} from "./args.ts";

const throwsUsage = (fn: () => unknown, message: string) =>
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof UsageError, `not a UsageError: ${e}`);
    assert.ok(e instanceof ConfigError);
    assert.equal(e.message, message);
    return true;
  });

Deno.test("parsePort: 1-65535, or 0-65535 with allowZero; a bad number names the value and the range", () => {
  assert.equal(parsePort("PORT", "5000"), 5000);
  assert.equal(parsePort("PORT", "65535"), 65535);
  assert.equal(parsePort("PORT", "0", true), 0);
  throwsUsage(() => parsePort("PORT", "abc"), "PORT=abc: expected a port 1-65535");
  throwsUsage(() => parsePort("PORT", "0"), "PORT=0: expected a port 1-65535");
  throwsUsage(() => parsePort("PORT", "65536"), "PORT=65536: expected a port 1-65535");
  throwsUsage(() => parsePort("PORT", "-1"), "PORT=-1: expected a port 1-65535");
  throwsUsage(() => parsePort("PORT", "80.5"), "PORT=80.5: expected a port 1-65535");
  throwsUsage(() => parsePort("PORT", "abc", true), "PORT=abc: expected a port 0-65535 (0: any free port)");
});

Deno.test("parseProto, parseHost, parseSignal: what is accepted, and the errors", () => {
  assert.equal(parseProto("PROTO", "TCP"), "tcp");
  assert.equal(parseProto("PROTO", "udp"), "udp");
  throwsUsage(() => parseProto("PROTO", "sctp"), "PROTO=sctp: expected tcp or udp");
  for (const h of ["0.0.0.0", "::", "127.0.0.1", "::1", "::ffff:127.0.0.1", "10.1.2.3"]) {
    assert.equal(parseHost("--host", h), h);
  }
  throwsUsage(
    () => parseHost("--host", "localhost"),
    "--host=localhost: expected an IP address to bind: 0.0.0.0, ::, 127.0.0.1, ::1 or another literal",
  );
  assert.throws(() => parseHost("--host", "[::1]"), { message: /^--host=\[::1\]: expected an IP address/ });
  assert.equal(parseSignal("--signal", "term"), "SIGTERM");
  assert.equal(parseSignal("--signal", "SIGKILL"), "SIGKILL");
  throwsUsage(() => parseSignal("--signal", "HUP"), "--signal=HUP: expected TERM or KILL");
});

Deno.test("parseSecondsMs, parseMs, parseCount: numbers in range, fractions where documented", () => {
  assert.equal(parseSecondsMs("--seconds", "2"), 2000);
  assert.equal(parseSecondsMs("--interval", "0.1"), 100);
  assert.equal(parseSecondsMs("--interval", "0"), 0);
  assert.throws(() => parseSecondsMs("--seconds", "0", { allowZero: false }), {
    message: /^--seconds=0: expected/,
  });
  assert.throws(() => parseSecondsMs("--seconds", "-1"), {
    message: /^--seconds=-1: expected a number of seconds >= 0/,
  });
  assert.throws(() => parseSecondsMs("--seconds", "1e3"), { message: /^--seconds=1e3: expected/ });
  assert.equal(parseMs("--ms", "200"), 200);
  throwsUsage(
    () => parseMs("--ms", "0.5"),
    "--ms=0.5: expected a whole number of milliseconds 0-86400000 (e.g. 200)",
  );
  assert.equal(parseCount("COUNT", "3", 1, 10), 3);
  throwsUsage(() => parseCount("COUNT", "0", 1, 10), "COUNT=0: expected a whole number 1-10");
});

Deno.test("parseCli: positionals and options; unknown options, missing values and arguments are UsageErrors", () => {
  const spec = { options: { host: { type: "string" as const } }, positionals: ["PROTO", "PORT"] };
  assert.deepEqual(parseCli(["tcp", "5000", "--host", "::1"], spec), {
    values: { host: "::1" },
    positionals: ["tcp", "5000"],
  });
  assert.equal(parseCli(["--help"], spec), "help");
  assert.equal(parseCli(["-h"], spec), "help");
  throwsUsage(() => parseCli(["tcp", "1", "--bogus"], spec), "Unknown option '--bogus'");
  throwsUsage(() => parseCli(["tcp", "1", "--host"], spec), "Option '--host <value>' argument missing");
  throwsUsage(() => parseCli(["tcp"], spec), "missing argument PORT");
  throwsUsage(() => parseCli([], spec), "missing arguments PROTO PORT");
  throwsUsage(
    () => parseCli(["tcp", "1", "2"], spec),
    'unexpected argument(s) "2": takes PROTO PORT and options',
  );
});
