/**
 * A throwaway PostgreSQL server for tests and benchmarks: Debian's binaries (`initdb`, `postgres`) run as the
 * `postgres` user over a temporary data directory, listening on a free loopback port with its socket in the
 * same temporary directory. `close()` stops the server and removes everything; `stop()`/`start()`/`restart()`
 * simulate an outage while keeping the data.
 *
 * ```ts
 * const reason = postgresSkipReason();
 * if (reason) console.log(`skipped: ${reason}`);
 * await using pg = await startPostgres();
 * const url = await pg.createDatabase("t1"); // or pg.url (database "postgres")
 * ```
 * @module
 */
import { freePort } from "../../testing/port.ts";

/** Where Debian puts a PostgreSQL version's server binaries; `PG_BIN` overrides. */
function binDir(): string | undefined {
  const env = Deno.env.get("PG_BIN");
  if (env) return env;
  for (const v of ["17", "16", "15", "14", "13"]) {
    const dir = `/usr/lib/postgresql/${v}/bin`;
    try {
      if (Deno.statSync(`${dir}/postgres`).isFile) return dir;
    } catch { /* next */ }
  }
  return undefined;
}

/** The uid and gid of the `postgres` user, from /etc/passwd. */
function postgresUser(): { uid: number; gid: number } | undefined {
  try {
    for (const line of Deno.readTextFileSync("/etc/passwd").split("\n")) {
      const f = line.split(":");
      if (f[0] === "postgres") return { uid: Number(f[2]), gid: Number(f[3]) };
    }
  } catch { /* none */ }
  return undefined;
}

/**
 * Why a real PostgreSQL cannot be started here (not root, no binaries, no `postgres` user), or undefined
 * when it can. Tests print the reason and skip.
 */
export function postgresSkipReason(): string | undefined {
  if (Deno.build.os !== "linux") return "PostgreSQL tests run on Linux only";
  if (Deno.uid() !== 0) return "starting a test PostgreSQL needs root (it runs initdb as the postgres user)";
  if (!binDir()) return "PostgreSQL server binaries not found (apt-get install postgresql, or set PG_BIN)";
  if (!postgresUser()) return "no `postgres` user (apt-get install postgresql)";
  return undefined;
}

/** Options for {@link startPostgres}. */
export interface PostgresOptions {
  /**
   * Durable settings (fsync on, as in production) for benchmarks; default false: fsync and
   * full_page_writes off, which is much faster and fine for a throwaway server (commits still survive a
   * server restart, only not a machine crash).
   */
  durable?: boolean;
  /** Extra `-c name=value` server settings. */
  settings?: Record<string, string | number>;
  /** Deadline for start-up, ms (default 30 s). */
  startMs?: number;
}

/** A running throwaway PostgreSQL. */
export interface TestPostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` (trust auth, no password). */
  readonly url: string;
  /** The loopback TCP port. */
  readonly port: number;
  /** The temporary directory: data directory `data/` and the Unix socket. */
  readonly dir: string;
  /** A URL for database `name`, created if missing (a fresh database per test keeps tests apart). */
  createDatabase(name: string): Promise<string>;
  /** Run SQL with psql as the superuser on `database` (default postgres); resolves to psql's stdout. */
  psql(sql: string, database?: string): Promise<string>;
  /** Fast shutdown (clients disconnected, data kept); resolves once the server has exited. */
  stop(): Promise<void>;
  /** Start again on the same port and data; resolves once it accepts connections. */
  start(): Promise<void>;
  /** `stop()` then `start()`. */
  restart(): Promise<void>;
  /** Whether the server process is running. */
  readonly running: boolean;
  /** The server's last output lines (for failure messages). */
  log(): string;
  /** Stop the server and remove the temporary directory. Safe to call twice. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

async function run(
  cmd: string,
  args: string[],
  user: { uid: number; gid: number },
  cwd: string,
  stdin?: string,
): Promise<{ code: number; out: string; err: string }> {
  const child = new Deno.Command(cmd, {
    args,
    uid: user.uid,
    gid: user.gid,
    cwd,
    clearEnv: true,
    env: { PATH: "/usr/bin:/bin", LANG: "C.UTF-8", LC_ALL: "C.UTF-8" },
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const o = await child.output();
  const dec = new TextDecoder();
  return { code: o.code, out: dec.decode(o.stdout), err: dec.decode(o.stderr) };
}

/**
 * initdb into a new temporary directory and start `postgres` on a free loopback port; resolves once it
 * accepts connections. Throws (after cleaning up) when it cannot; call {@link postgresSkipReason} first.
 */
export async function startPostgres(opts: PostgresOptions = {}): Promise<TestPostgres> {
  const reason = postgresSkipReason();
  if (reason) throw new Error(`cannot start PostgreSQL: ${reason}`);
  const bin = binDir()!;
  const user = postgresUser()!;
  const dir = await Deno.makeTempDir({ prefix: "portwatch-pg-" });
  const data = `${dir}/data`;
  await Deno.chown(dir, user.uid, user.gid);
  const init = await run(
    `${bin}/initdb`,
    [
      "-D",
      data,
      "-U",
      "postgres",
      "--auth=trust",
      "-E",
      "UTF8",
      "--locale=C",
      "--no-sync",
      "--no-instructions",
    ],
    user,
    dir,
  );
  if (init.code !== 0) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw new Error(`initdb failed (exit ${init.code}): ${init.err || init.out}`);
  }

  const settings: Record<string, string | number> = {
    listen_addresses: "127.0.0.1",
    unix_socket_directories: dir,
    max_connections: 200,
    shared_buffers: "128MB",
    ...(opts.durable ? {} : { fsync: "off", full_page_writes: "off", synchronous_commit: "on" }),
    log_min_messages: "warning",
    ...opts.settings,
  };
  let port = freePort();
  let child: Deno.ChildProcess | undefined;
  let exited: Promise<Deno.CommandStatus> | undefined;
  let tail: string[] = [];
  let closed = false;

  const drain = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      tail.push(...chunk.split("\n").filter((l) => l !== ""));
      if (tail.length > 200) tail = tail.slice(-100);
    }
  };

  const ready = async (): Promise<boolean> => {
    const r = await run(`${bin}/pg_isready`, ["-h", "127.0.0.1", "-p", String(port), "-t", "1"], user, dir);
    return r.code === 0;
  };

  const spawn = async (): Promise<void> => {
    const args = ["-D", data, "-p", String(port)];
    for (const [k, v] of Object.entries(settings)) args.push("-c", `${k}=${v}`);
    const c = new Deno.Command(`${bin}/postgres`, {
      args,
      uid: user.uid,
      gid: user.gid,
      cwd: dir,
      clearEnv: true,
      env: { PATH: "/usr/bin:/bin", LANG: "C.UTF-8", LC_ALL: "C.UTF-8" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    child = c;
    exited = c.status;
    drain(c.stdout).catch(() => {});
    drain(c.stderr).catch(() => {});
    const deadline = Date.now() + (opts.startMs ?? 30_000);
    let done = false;
    exited.then(() => done = true);
    while (!(await ready())) {
      if (done) throw new Error(`postgres exited during start-up:\n${tail.slice(-20).join("\n")}`);
      if (Date.now() > deadline) {
        throw new Error(
          `postgres not ready within ${opts.startMs ?? 30_000} ms:\n${tail.slice(-20).join("\n")}`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  const stop = async (): Promise<void> => {
    const c = child, e = exited;
    child = undefined;
    exited = undefined;
    if (!c || !e) return;
    try {
      c.kill("SIGINT"); // fast shutdown: disconnect clients, checkpoint, exit
    } catch { /* already gone */ }
    const timer = setTimeout(() => {
      try {
        c.kill("SIGQUIT"); // immediate shutdown if fast shutdown hangs
      } catch { /* gone */ }
    }, 15_000);
    try {
      await e;
    } finally {
      clearTimeout(timer);
    }
  };

  const start = async (): Promise<void> => {
    if (child) return;
    try {
      await spawn();
    } catch (err) {
      await stop();
      throw err;
    }
  };

  // A port picked by freePort can be taken in between: try a few.
  for (let attempt = 0;; attempt++) {
    try {
      await start();
      break;
    } catch (err) {
      const taken = tail.some((l) => l.includes("could not bind") || l.includes("Address already in use"));
      if (attempt < 3 && taken) {
        port = freePort();
        tail = [];
        continue;
      }
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw err;
    }
  }

  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const psql = async (sql: string, database = "postgres"): Promise<string> => {
    const r = await run(
      `${bin}/psql`,
      [
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-At",
        "-h",
        "127.0.0.1",
        "-p",
        String(port),
        "-U",
        "postgres",
        "-d",
        database,
      ],
      user,
      dir,
      sql,
    );
    if (r.code !== 0) throw new Error(`psql failed (exit ${r.code}): ${r.err}`);
    return r.out;
  };
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };

  return {
    url,
    port,
    dir,
    createDatabase: async (name: string) => {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) {
        throw new Error(`database name ${JSON.stringify(name)}: use [a-z0-9_]`);
      }
      const exists = await psql(`SELECT 1 FROM pg_database WHERE datname = '${name}'`);
      if (exists.trim() !== "1") await psql(`CREATE DATABASE ${name}`);
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    psql,
    stop,
    start,
    restart: async () => {
      await stop();
      await start();
    },
    get running() {
      return child !== undefined;
    },
    log: () => tail.join("\n"),
    close,
    [Symbol.asyncDispose]: close,
  };
}
