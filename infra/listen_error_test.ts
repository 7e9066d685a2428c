import assert from "node:assert/strict";
import { formatAddress, ListenError, listenError } from "./listen_error.ts";

const ENV = { host: "LISTENER_HOST", port: "LISTENER_PORT" };

/** What binding `host`:`port` throws (Deno.listen and Deno.serve throw alike), undefined when it binds. */
function bindError(host: string, port: number): unknown {
  try {
    const l = Deno.listen({ hostname: host, port });
    l.close();
    return undefined;
  } catch (e) {
    return e;
  }
}

Deno.test("listenError: a port in use names the address and the port's setting, in one line", () => {
  const held = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = held.addr.port;
    const e = listenError(bindError("127.0.0.1", port), "127.0.0.1", port, ENV);
    assert.ok(e instanceof ListenError);
    assert.equal(
      e.message,
      `cannot listen on 127.0.0.1:${port} (LISTENER_PORT): address in use; stop what holds it or set LISTENER_PORT`,
    );
    assert.equal(e.setting, "LISTENER_PORT");
    const flag = listenError(bindError("127.0.0.1", port), "127.0.0.1", port, {
      host: "--host",
      port: "--port",
    });
    assert.match(flag!.message, /\(--port\): address in use; stop what holds it or set --port$/);
  } finally {
    held.close();
  }
});

Deno.test("listenError: permission denied, an address not of this machine, a name that does not resolve", () => {
  assert.equal(
    listenError(new Deno.errors.PermissionDenied("Permission denied (os error 13)"), "0.0.0.0", 80, ENV)
      ?.message,
    "cannot listen on 0.0.0.0:80 (LISTENER_PORT): permission denied (ports below 1024 need root or " +
      "CAP_NET_BIND_SERVICE); set LISTENER_PORT to a port this user may bind",
  );
  const notHere = bindError("192.0.2.1", 8080); // TEST-NET-1: on no interface
  assert.ok(notHere instanceof Deno.errors.AddrNotAvailable, String(notHere));
  assert.equal(
    listenError(notHere, "192.0.2.1", 8080, ENV)?.message,
    "cannot listen on 192.0.2.1:8080 (LISTENER_HOST): not an address of this machine; " +
      "set LISTENER_HOST to one of its addresses, such as 127.0.0.1 or 0.0.0.0",
  );
  const lookup = new Error("failed to lookup address information: Name or service not known");
  assert.equal(
    listenError(lookup, "no.such.host.invalid", 8080, ENV)?.message,
    'cannot listen on no.such.host.invalid:8080 (LISTENER_HOST): "no.such.host.invalid" does not resolve; ' +
      "set LISTENER_HOST to an address of this machine, such as 127.0.0.1 or 0.0.0.0",
  );
});

Deno.test("listenError: anything else is not a bind failure and is left to propagate", () => {
  assert.equal(
    listenError(new Deno.errors.NotCapable("Requires net access"), "127.0.0.1", 8080, ENV),
    undefined,
  );
  assert.equal(listenError(new TypeError("boom"), "127.0.0.1", 8080, ENV), undefined);
  assert.equal(listenError("a string", "127.0.0.1", 8080, ENV), undefined);
});

Deno.test("formatAddress: IPv6 hosts in brackets", () => {
  assert.equal(formatAddress("::1", 8080), "[::1]:8080");
  assert.equal(formatAddress("0.0.0.0", 8080), "0.0.0.0:8080");
  assert.equal(formatAddress("localhost", 1), "localhost:1");
});
