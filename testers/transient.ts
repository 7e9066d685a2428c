/**
 * A port held for a short time, then closed:
 *
 *     deno run -A testers/transient.ts tcp|udp PORT [--ms 200] [--host ADDR]
 *
 * Binds like hold.ts (PORT 0: any free port), prints the same ready line, holds the socket `--ms`
 * milliseconds (default 200; 0 closes it at once), closes it and prints
 * `{"closed":true,...,"held_ms":N,"reason":"timeout"}`, then exits 0. For watchers' short-lived-port cases.
 * @module
 */
import { emit, parseCli, parseMs, runMain, stringOpt } from "./args.ts";
import { holdSocket, openSocket, parseProtoPortHost, readyLine } from "./hold.ts";

/** Usage of transient.ts. */
export const USAGE = `transient.ts tcp|udp PORT [--ms 200] [--host ADDR]
  Open PORT (0: any free port), hold it for --ms milliseconds (default 200), close it and exit.
  --ms N         how long the port stays open, in whole milliseconds (0: close at once)
  --host ADDR    address to bind: 0.0.0.0 (default), ::, 127.0.0.1, ::1 or another literal
  Prints {"ready":true,...} once bound and {"closed":true,...,"held_ms":N} once closed.
  Exit 1 when the port cannot be bound (in use, no permission), 2 for a bad argument.`;

async function main(args: string[]): Promise<number | "help"> {
  const cli = parseCli(args, {
    options: { host: { type: "string" }, ms: { type: "string" } },
    positionals: ["PROTO", "PORT"],
  });
  if (cli === "help") return "help";
  const { proto, port, host } = parseProtoPortHost(cli);
  const msOpt = stringOpt(cli, "ms");
  const ms = msOpt !== undefined ? parseMs("--ms", msOpt) : 200;
  const sock = await openSocket(proto, host, port);
  emit(readyLine(sock));
  emit(await holdSocket(sock, ms));
  return 0;
}

if (import.meta.main) await runMain("transient", USAGE, () => main(Deno.args));
