/**
 * Oracle: carrying out the workload's actions with real holder processes, and telling the model what happened.
 * @module
 */
import type { HolderPool } from "./holders.ts";
import type { Action, Workload } from "./workload.ts";

/** What one action did: its text, and the errno of a bind/connect the kernel refused. */
export interface Done {
  text: string;
  refused?: string;
}

/** Failures a random workload provokes on purpose (ports and addresses collide); anything else is a bug. */
const EXPECTED_ERRNOS = new Set(["EADDRINUSE"]);

/** Carry out `action` with the holders of `pool`; `pids` maps the model's process numbers to real pids. */
export async function execute(
  action: Action,
  workload: Workload,
  pool: HolderPool,
  pids: Map<number, number>,
): Promise<Done> {
  const text = workload.describe(action);
  const pid = pids.get(action.proc);
  switch (action.kind) {
    case "spawn": {
      pids.set(action.proc, await pool.spawn());
      workload.applied(action, true);
      return { text: `${text} (pid ${pids.get(action.proc)})` };
    }
    case "open": {
      const { proto, host, port, v6only, reuseport } = action.spec;
      const r = await pool.command(pid!, {
        op: "open",
        sid: action.sock,
        proto,
        host,
        port,
        v6only,
        reuseport,
      });
      if (!r.ok && !EXPECTED_ERRNOS.has(r.errno ?? "")) throw new Error(`${text}: ${r.errno} ${r.error}`);
      workload.applied(action, r.ok);
      return r.ok ? { text } : { text: `${text}: ${r.errno}`, refused: r.errno };
    }
    case "connect": {
      const { proto, host, port } = action.client;
      const r = await pool.command(pid!, { op: "connect", sid: action.sock, proto, host, port });
      workload.applied(action, r.ok);
      return r.ok ? { text } : { text: `${text}: ${r.errno}`, refused: r.errno };
    }
    case "fork": {
      const child = await pool.fork(pid!);
      pids.set(action.child, child);
      workload.applied(action, true);
      return { text: `${text} (pid ${child})` };
    }
    case "close": {
      const r = await pool.command(pid!, { op: "close", sid: action.sock });
      if (!r.ok) throw new Error(`${text}: ${r.errno} ${r.error}`);
      workload.applied(action, true);
      return { text };
    }
    case "exit": {
      await pool.end(pid!, action.how);
      workload.applied(action, true);
      return { text };
    }
  }
}
