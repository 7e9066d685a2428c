/**
 * A burst of short-lived ports:
 *
 *     deno run -A testers/burst.ts tcp|udp COUNT [--base 6000] [--hold-ms 500] [--interval 0.1] [--host ADDR]
 *
 * Opens ports BASE, BASE+1, ... BASE+COUNT-1, the i-th at i x INTERVAL seconds after the start (scheduled
 * against the monotonic clock, so delays do not add up), holds each HOLD-MS milliseconds, then closes it. Prints
 * one JSON line per port opened (`{"event":"open","proto","port","host","pid","at_ms"}`), one per port closed
 * (`{"event":"close",...,"held_ms"}`) and, at the end, a summary
 * (`{"summary":true,"proto","host","pid","count","opened","closed","failed":[{"port","error"}],"elapsed_ms"}`).
 * A port that cannot be bound is reported on stderr and in `failed`, the others go on; exit 1 when any failed.
 * SIGTERM/SIGINT close every open port at once (close lines printed), skip the rest, print the summary
 * (with `"interrupted":"SIGTERM"`) and exit 1.
 * @module
 */
import {
  emit,
  parseCli,
  parseCount,
  parseHost,
  parseMs,
  parsePort,
  parseProto,
  parseSecondsMs,
  runMain,
  stringOpt,
  TesterError,
  UsageError,
} from "./args.ts";
import { type OpenedSocket, openSocket } from "./hold.ts";

/** Usage of burst.ts. */
export const USAGE = `burst.ts tcp|udp COUNT [--base 6000] [--hold-ms 500] [--interval 0.1] [--host ADDR]
  Open COUNT ports BASE..BASE+COUNT-1, one every INTERVAL seconds, each held HOLD-MS milliseconds.
  --base PORT      the first port (default 6000); BASE+COUNT-1 must be <= 65535
  --hold-ms N      how long each port stays open, in milliseconds (default 500)
  --interval S     seconds between two openings, fractions allowed, 0: all at once (default 0.1)
  --host ADDR      address to bind: 0.0.0.0 (default), ::, 127.0.0.1, ::1 or another literal
  Prints a JSON line per port opened and closed, and a summary line. Exit 1 when a port could not be
  bound (the others are still opened), 2 for a bad argument.`;

async function main(args: string[]): Promise<number | "help"> {
  const cli = parseCli(args, {
    options: {
      base: { type: "string" },
      "hold-ms": { type: "string" },
      interval: { type: "string" },
      host: { type: "string" },
    },
    positionals: ["PROTO", "COUNT"],
  });
  if (cli === "help") return "help";
  const proto = parseProto("PROTO", cli.positionals[0]);
  const count = parseCount("COUNT", cli.positionals[1], 1, 10_000);
  const baseOpt = stringOpt(cli, "base");
  const base = baseOpt !== undefined ? parsePort("--base", baseOpt) : 6000;
  if (base + count - 1 > 65535) {
    throw new UsageError(
      "--base",
      String(base),
      `a first port such that ${count} ports fit below 65536 (at most ${65536 - count})`,
    );
  }
  const holdOpt = stringOpt(cli, "hold-ms");
  const holdMs = holdOpt !== undefined ? parseMs("--hold-ms", holdOpt) : 500;
  const intervalOpt = stringOpt(cli, "interval");
  const intervalMs = intervalOpt !== undefined ? parseSecondsMs("--interval", intervalOpt) : 100;
  const hostOpt = stringOpt(cli, "host");
  const host = hostOpt !== undefined ? parseHost("--host", hostOpt) : "0.0.0.0";

  const t0 = performance.now();
  const since = () => Math.round(performance.now() - t0);
  const open = new Map<number, { sock: OpenedSocket; at: number; timer: ReturnType<typeof setTimeout> }>();
  const failed: { port: number; error: string }[] = [];
  let opened = 0, closed = 0;
  let interrupted: string | undefined;
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let allDone!: () => void;
  const done = new Promise<void>((r) => allDone = r);
  let settled = 0;
  const settle = () => {
    if (++settled === count) allDone();
  };

  const close = async (port: number) => {
    const o = open.get(port);
    if (!o) return;
    open.delete(port);
    clearTimeout(o.timer);
    await o.sock.close();
    closed++;
    emit({ event: "close", proto, port, host, pid: Deno.pid, at_ms: since(), held_ms: since() - o.at });
    settle();
  };

  const start = async (port: number) => {
    let sock: OpenedSocket;
    try {
      sock = await openSocket(proto, host, port);
    } catch (e) {
      const error = e instanceof TesterError ? e.message : String(e);
      failed.push({ port, error });
      console.error(`burst: ${error}`);
      settle();
      return;
    }
    if (interrupted !== undefined) {
      await sock.close();
      settle();
      return;
    }
    opened++;
    const at = since();
    emit({ event: "open", proto, port, host, pid: Deno.pid, at_ms: at });
    const timer = setTimeout(() => close(port), holdMs);
    open.set(port, { sock, at, timer });
  };

  for (let i = 0; i < count; i++) {
    const port = base + i;
    const t = setTimeout(() => {
      timers.delete(t);
      start(port);
    }, Math.max(0, t0 + i * intervalMs - performance.now()));
    timers.add(t);
  }

  const onSignal = (sig: Deno.Signal) => () => {
    if (interrupted !== undefined) return;
    interrupted = sig;
    for (const t of timers) {
      clearTimeout(t);
      settle();
    }
    timers.clear();
    for (const port of [...open.keys()]) close(port);
  };
  const listeners = (["SIGTERM", "SIGINT"] as const).map((s) => [s, onSignal(s)] as const);
  for (const [s, fn] of listeners) Deno.addSignalListener(s, fn);
  await done;
  for (const [s, fn] of listeners) Deno.removeSignalListener(s, fn);

  emit({
    summary: true,
    proto,
    host,
    pid: Deno.pid,
    count,
    base,
    opened,
    closed,
    failed,
    elapsed_ms: since(),
    ...(interrupted !== undefined ? { interrupted } : {}),
  });
  return failed.length > 0 || interrupted !== undefined ? 1 : 0;
}

if (import.meta.main) await runMain("burst", USAGE, () => main(Deno.args));
