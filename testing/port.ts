/** Test and benchmark helper: a free loopback TCP port, for servers that cannot pick their own. */

/**
 * A TCP port on 127.0.0.1 that was free a moment ago (bound, read, released); another process can take it in
 * between, so a caller that must have it retries.
 *
 * @example
 * ```ts
 * const port = freePort();
 * const server = Deno.listen({ hostname: "127.0.0.1", port });
 * server.close();
 * ```
 */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = l.addr as Deno.NetAddr;
  l.close();
  return port;
}
