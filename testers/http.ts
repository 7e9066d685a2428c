/**
 * An HTTP server answering `Hello <port>` to every request:
 *
 *     deno run -A testers/http.ts PORT [--host ADDR] [--seconds N]
 *
 * Deno.serve on `--host` (default 0.0.0.0) and PORT (0: any free port); prints the same ready line as hold.ts
 * (`{"ready":true,"proto":"tcp","port":..,"host":..,"pid":..}`) once listening, serves until SIGTERM/SIGINT or
 * for N seconds, then shuts down and prints `{"closed":true,...}`. An address in use names its holder.
 * @module
 */
import { emit, parseCli, parseHost, parsePort, parseSecondsMs, runMain, stringOpt } from "./args.ts";
import { bindFailure, waitOrSignal } from "./hold.ts";

/** Usage of http.ts. */
export const USAGE = `http.ts PORT [--host ADDR] [--seconds N]
  Serve HTTP on PORT (0: any free port), answering "Hello <port>" to every request.
  --host ADDR    address to listen on: 0.0.0.0 (default), ::, 127.0.0.1, ::1 or another literal
  --seconds N    stop after N seconds; default: until SIGTERM or SIGINT
  Prints {"ready":true,"proto":"tcp",...} once listening and {"closed":true,...} once stopped.
  Exit 1 when the port cannot be bound (in use, no permission), 2 for a bad argument.`;

async function main(args: string[]): Promise<number | "help"> {
  const cli = parseCli(args, {
    options: { host: { type: "string" }, seconds: { type: "string" } },
    positionals: ["PORT"],
  });
  if (cli === "help") return "help";
  const port = parsePort("PORT", cli.positionals[0], true);
  const hostOpt = stringOpt(cli, "host");
  const host = hostOpt !== undefined ? parseHost("--host", hostOpt) : "0.0.0.0";
  const seconds = stringOpt(cli, "seconds");
  const ms = seconds !== undefined ? parseSecondsMs("--seconds", seconds) : undefined;

  let bound = port;
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({ hostname: host, port, onListen: () => {} }, () => new Response(`Hello ${bound}`));
  } catch (e) {
    throw bindFailure(e, "tcp", host, port);
  }
  bound = server.addr.port;
  const t0 = performance.now();
  emit({ ready: true, proto: "tcp", port: bound, host, pid: Deno.pid });
  const reason = await waitOrSignal(ms);
  await server.shutdown();
  emit({
    closed: true,
    proto: "tcp",
    port: bound,
    host,
    pid: Deno.pid,
    held_ms: Math.round(performance.now() - t0),
    reason,
  });
  return 0;
}

if (import.meta.main) await runMain("http", USAGE, () => main(Deno.args));
