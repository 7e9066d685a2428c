/**
 * A server that cannot take its address (port in use, a privileged port, an address not on this machine):
 * one line naming the address, the setting to change and what to do, reported like a {@link ConfigError}
 * (`portwatch: <message>`), never as an uncaught stack trace.
 * @module
 */

/** Where a server's host and port come from, for the message: e.g. `LISTENER_HOST` or `--host`. */
export interface ListenSettings {
  host: string;
  port: string;
}

/** A bind failure: `cannot listen on HOST:PORT (SETTING): REASON; ADVICE`. */
export class ListenError extends Error {
  /**
   * @param address host:port as given, e.g. `0.0.0.0:8080` or `[::1]:8080`
   * @param setting the setting to change, e.g. `LISTENER_PORT`
   * @param reason what went wrong, e.g. "address in use"
   * @param advice what to do, e.g. "stop what holds it or set LISTENER_PORT"
   */
  constructor(
    readonly address: string,
    readonly setting: string,
    readonly reason: string,
    readonly advice: string,
  ) {
    super(`cannot listen on ${address} (${setting}): ${reason}; ${advice}`);
    this.name = "ListenError";
  }
}

/** `host:port`, the host in brackets when it is an IPv6 address. */
export function formatAddress(host: string, port: number): string {
  return `${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/**
 * The {@link ListenError} that an error thrown by `Deno.serve`/`Deno.listen` on `host`:`port` means, or
 * undefined when it is not a bind failure (let those propagate). `settings` names where host and port came from.
 */
export function listenError(
  e: unknown,
  host: string,
  port: number,
  settings: ListenSettings,
): ListenError | undefined {
  const address = formatAddress(host, port);
  if (e instanceof Deno.errors.AddrInUse) {
    return new ListenError(
      address,
      settings.port,
      "address in use",
      `stop what holds it or set ${settings.port}`,
    );
  }
  if (e instanceof Deno.errors.PermissionDenied) {
    const why = port > 0 && port < 1024
      ? "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
      : "permission denied";
    return new ListenError(address, settings.port, why, `set ${settings.port} to a port this user may bind`);
  }
  if (e instanceof Deno.errors.AddrNotAvailable) {
    return new ListenError(
      address,
      settings.host,
      "not an address of this machine",
      `set ${settings.host} to one of its addresses, such as 127.0.0.1 or 0.0.0.0`,
    );
  }
  if (e instanceof Error && /failed to lookup address/i.test(e.message)) {
    return new ListenError(
      address,
      settings.host,
      `${JSON.stringify(host)} does not resolve`,
      `set ${settings.host} to an address of this machine, such as 127.0.0.1 or 0.0.0.0`,
    );
  }
  return undefined;
}
