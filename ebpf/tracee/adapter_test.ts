import assert from "node:assert/strict";
import { ConfigError, envOf } from "../../events/env.ts";
import { EngineUnavailableError } from "../event_source.ts";
import type { SocketEvent } from "../socket_event.ts";
import {
  DEFAULT_TRACEE_EVENTS,
  readLines,
  readTraceeFile,
  runTracee,
  splitShellWords,
  TraceeAdapter,
  traceeArgv,
  TraceeExitError,
  traceeSettingsFromEnv,
  type TraceeStream,
  TraceeUnavailableError,
  unhandledEvents,
} from "./adapter.ts";
import { FAKE_TRACEE_DIR } from "./testing/fake_tracee.ts";
import { TRACEE_FIXTURES } from "./testing/fixtures.ts";

const FIXTURES = TRACEE_FIXTURES;
const EXPECTED = new URL("./expected/", import.meta.url).pathname;
const fixtureNames = () =>
  [...Deno.readDirSync(FIXTURES)].map((e) => e.name).filter((n) => n.endsWith(".jsonl")).sort();
const lines = (name: string) => Deno.readTextFileSync(FIXTURES + name).split("\n");

/** `promise`, or a rejection naming `what` after `ms`. */
async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** All events of a stream (with a deadline). */
async function collect(stream: AsyncIterable<SocketEvent>, ms = 20_000): Promise<SocketEvent[]> {
  const out: SocketEvent[] = [];
  await withDeadline(
    (async () => {
      for await (const e of stream) out.push(e);
    })(),
    ms,
    "collecting events",
  );
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Fixtures

Deno.test("TraceeAdapter: every fixture file gives exactly its expected events", () => {
  const expectedFiles = [...Deno.readDirSync(EXPECTED)].map((e) => e.name).sort();
  assert.deepEqual(expectedFiles, fixtureNames().map((n) => n.replace(/\.jsonl$/, ".json")).sort());
  for (const name of fixtureNames()) {
    const expected = JSON.parse(Deno.readTextFileSync(EXPECTED + name.replace(/\.jsonl$/, ".json")));
    const adapter = new TraceeAdapter();
    const got = lines(name).flatMap((l) => adapter.push(l));
    assert.deepEqual(got, expected.events, name);
    assert.deepEqual([adapter.stats.used, adapter.stats.skipped], [expected.used, expected.skipped], name);
    assert.equal(adapter.stats.events, expected.events.length, name);
  }
});

Deno.test("TraceeAdapter: network packet fixtures give nothing, every line counted as skipped", () => {
  for (const name of fixtureNames().filter((n) => n.startsWith("net_packet"))) {
    const adapter = new TraceeAdapter();
    const all = lines(name).filter((l) => l.trim() !== "");
    assert.deepEqual(all.flatMap((l) => adapter.push(l)), [], name);
    assert.deepEqual(adapter.stats, { used: 0, skipped: all.length, events: 0 }, name);
  }
});

// ---------------------------------------------------------------------------------------------------------------
// The per-(pid, fd) table

const BASE = JSON.parse(lines("socket_bind_listen_close.v0.24.constructed.jsonl")[0]);
type Arg = { name: string; type: string; value: unknown };
const line = (eventName: string, pid: number, args: Arg[], returnValue = 0) =>
  JSON.stringify({ ...BASE, eventName, hostProcessId: pid, hostThreadId: pid, args, returnValue });
const socket = (pid: number, fd: number, type: string) =>
  line("socket", pid, [
    { name: "domain", type: "string", value: "AF_INET" },
    { name: "type", type: "string", value: type },
    { name: "protocol", type: "int32", value: 0 },
  ], fd);
const sockfd = (fd: number): Arg => ({ name: "sockfd", type: "int32", value: fd });
const addr = (name: string, port: number): Arg => ({
  name,
  type: "SockAddr",
  value: { sa_family: "AF_INET", sin_addr: "0.0.0.0", sin_port: String(port) },
});
const lsmBind = (pid: number, fd: number, port: number) =>
  line("security_socket_bind", pid, [sockfd(fd), addr("local_addr", port)]);
const bind = (pid: number, fd: number, port: number, ret = 0) =>
  line("bind", pid, [sockfd(fd), addr("addr", port)], ret);
const listen = (pid: number, fd: number, ret = 0) =>
  line("listen", pid, [sockfd(fd), { name: "backlog", type: "int32", value: 5 }], ret);
const close = (pid: number, fd: number) => line("close", pid, [{ name: "fd", type: "int32", value: fd }]);
const fork = (pid: number, child: number) =>
  line("sched_process_fork", pid, [{ name: "child_pid", type: "int32", value: child }]);
const exit = (pid: number) =>
  line("sched_process_exit", pid, [{ name: "process_group_exit", type: "bool", value: true }]);
const pick = (e: SocketEvent) => [e.kind, e.pid, e.fd, e.proto, e.addr, e.port];

Deno.test("TraceeAdapter: a bind learns tcp/udp from the socket() that made its fd", () => {
  const a = new TraceeAdapter();
  a.push(socket(10, 5, "SOCK_DGRAM|SOCK_CLOEXEC"));
  a.push(socket(10, 6, "SOCK_STREAM"));
  assert.deepEqual(a.push(lsmBind(10, 5, 53)).map(pick), [["bind", 10, 5, "udp", "0.0.0.0", 53]]);
  assert.deepEqual(a.push(lsmBind(10, 6, 80)).map(pick), [["bind", 10, 6, "tcp", "0.0.0.0", 80]]);
  assert.equal(a.push(lsmBind(11, 5, 54))[0].proto, undefined, "another process's fd 5 is unknown");
  assert.equal(a.trackedFds, 3);
});

Deno.test("TraceeAdapter: a listen syscall gets the address of the bind before it; failed binds are not kept", () => {
  const a = new TraceeAdapter();
  a.push(socket(10, 6, "SOCK_STREAM"));
  a.push(bind(10, 6, 8080, -98)); // EADDRINUSE
  assert.deepEqual(a.push(listen(10, 6, -22)).map(pick), [["listen", 10, 6, "tcp", undefined, undefined]]);
  a.push(bind(10, 6, 8081));
  const [l] = a.push(listen(10, 6));
  assert.deepEqual(pick(l), ["listen", 10, 6, "tcp", "0.0.0.0", 8081]);
  assert.deepEqual(Object.keys(l).slice(0, 10), [
    "ts",
    "kind",
    "pid",
    "comm",
    "fd",
    "proto",
    "family",
    "addr",
    "port",
    "cgroupId",
  ]);
});

Deno.test("TraceeAdapter: close and exit forget fds; fork copies them to the child", () => {
  const a = new TraceeAdapter();
  a.push(socket(10, 5, "SOCK_DGRAM"));
  a.push(socket(10, 7, "SOCK_STREAM"));
  assert.deepEqual(a.push(fork(10, 20)).map((e) => [e.kind, e.pid, e.childPid]), [["fork", 10, 20]]);
  assert.equal(a.trackedFds, 4);
  assert.equal(a.push(lsmBind(20, 5, 53))[0].proto, "udp", "the child inherited fd 5");
  a.push(close(10, 5));
  assert.equal(a.push(lsmBind(10, 5, 53))[0].proto, undefined, "fd 5 was closed in the parent");
  assert.equal(a.push(lsmBind(20, 7, 80))[0].proto, "tcp");
  assert.deepEqual(a.push(exit(20)).map((e) => e.kind), ["exit"]);
  assert.equal(a.push(lsmBind(20, 7, 80))[0].proto, undefined);
  a.push(exit(10));
  assert.equal(a.trackedFds, 1, "only the bind after pid 20's exit (a reused pid)");
  a.push(close(20, 7));
  assert.equal(a.trackedFds, 0);
});

Deno.test("TraceeAdapter: the fd table is bounded", () => {
  const a = new TraceeAdapter(10);
  for (let pid = 1; pid <= 50; pid++) a.push(socket(pid, 3, "SOCK_STREAM"));
  assert.ok(a.trackedFds <= 10, `${a.trackedFds}`);
  assert.equal(a.push(lsmBind(50, 3, 1))[0].proto, "tcp", "the newest is kept");
  assert.equal(a.push(lsmBind(1, 3, 1))[0].proto, undefined, "the oldest was dropped");
});

Deno.test("TraceeAdapter: events() over lines; blank lines are not counted", async () => {
  const a = new TraceeAdapter();
  const got: SocketEvent[] = [];
  for await (
    const e of a.events(["", "  ", "junk", ...lines("socket_bind_listen_close.v0.24.constructed.jsonl")])
  ) {
    got.push(e);
  }
  assert.equal(got.length, 6);
  assert.deepEqual(a.stats, { used: 6, skipped: 1, events: 6 });
});

// ---------------------------------------------------------------------------------------------------------------
// Settings

Deno.test("splitShellWords: quotes and backslashes like a shell", () => {
  assert.deepEqual(splitShellWords("X", ""), []);
  assert.deepEqual(splitShellWords("X", "  --scope  comm=nginx \t"), ["--scope", "comm=nginx"]);
  assert.deepEqual(splitShellWords("X", `--output 'option:parse-arguments' "a b" c\\ d ''`), [
    "--output",
    "option:parse-arguments",
    "a b",
    "c d",
    "",
  ]);
  assert.deepEqual(splitShellWords("X", `"say \\"hi\\" \\n" 'it''s'`), [`say "hi" \\n`, "its"]);
  assert.deepEqual(splitShellWords("X", `a"b c"'d'`), ["ab cd"]);
  for (const bad of [`"open`, `'open`, `trailing\\`]) {
    assert.throws(
      () => splitShellWords("TRACEE_ARGS", bad),
      (e) => e instanceof ConfigError && /TRACEE_ARGS/.test(e.message),
    );
  }
});

Deno.test("traceeSettingsFromEnv: defaults, overrides and errors", () => {
  const d = traceeSettingsFromEnv(envOf({}));
  assert.deepEqual(d, {
    events: [...DEFAULT_TRACEE_EVENTS],
    args: [],
    outputFlag: ["--output", "json"],
    eventsFlag: ["--events"],
  });
  assert.deepEqual(unhandledEvents(d.events), []);
  assert.deepEqual(traceeArgv(d), [
    "--output",
    "json",
    "--events",
    "socket,security_socket_bind,security_socket_listen,close,sched_process_fork,sched_process_exit",
  ]);
  const old = traceeSettingsFromEnv(envOf({
    TRACE_EBPF_EVENTS: " bind, close ",
    TRACEE_ARGS: `--trace comm=nginx --output "option:parse-arguments"`,
    TRACEE_OUTPUT_FLAG: "-o format:json",
    TRACEE_EVENTS_FLAG: "--trace event=",
  }));
  assert.deepEqual(traceeArgv(old), [
    "--trace",
    "comm=nginx",
    "--output",
    "option:parse-arguments",
    "-o",
    "format:json",
    "--trace",
    "event=bind,close",
  ]);
  assert.deepEqual(unhandledEvents(["bind", "close.data.fd=3", "openat"]), ["openat"]);
  assert.throws(() => traceeSettingsFromEnv(envOf({ TRACE_EBPF_EVENTS: ",," })), ConfigError);
  assert.throws(() => traceeSettingsFromEnv(envOf({ TRACE_EBPF_EVENTS: "bind close" })), ConfigError);
  assert.throws(() => traceeSettingsFromEnv(envOf({ TRACEE_OUTPUT_FLAG: "--output table" })), /JSON output/);
  assert.throws(() => traceeSettingsFromEnv(envOf({ TRACEE_ARGS: "'x" })), /TRACEE_ARGS/);
});

// ---------------------------------------------------------------------------------------------------------------
// Files

Deno.test("readLines: lines across chunk boundaries, CRLF, split UTF-8, no final newline", async () => {
  const text = "a\r\nbé\n\nlast ✓";
  const bytes = new TextEncoder().encode(text);
  for (let cut = 0; cut <= bytes.length; cut++) {
    const stream = ReadableStream.from([bytes.slice(0, cut), bytes.slice(cut)]);
    const got: string[] = [];
    for await (const l of readLines(stream)) got.push(l);
    assert.deepEqual(got, ["a", "bé", "", "last ✓"], `cut at ${cut}`);
  }
});

Deno.test("readTraceeFile: a fixture file, then its exit", async () => {
  const stream = readTraceeFile(FIXTURES + "socket_bind_listen_close.v0.24.constructed.jsonl");
  const got = await collect(stream);
  const expected = JSON.parse(
    Deno.readTextFileSync(EXPECTED + "socket_bind_listen_close.v0.24.constructed.json"),
  );
  assert.deepEqual(got, expected.events);
  assert.deepEqual(stream.stats, { used: 6, skipped: 0, events: 6 });
  assert.deepEqual(await stream.exit, { code: 0, signal: null, success: true, stopped: false, stderr: "" });
  assert.throws(() => stream[Symbol.asyncIterator](), /only once/);
});

Deno.test("readTraceeFile: a missing file rejects the iteration; exit says so", async () => {
  const stream = readTraceeFile("/nonexistent/tracee.jsonl");
  await assert.rejects(collect(stream), Deno.errors.NotFound);
  const exit = await stream.exit;
  assert.equal(exit.success, false);
  assert.match(exit.stderr, /No such file|not found/i);
});

Deno.test("readTraceeFile: an abort stops a read that would never finish (FIFO)", async () => {
  const dir = await Deno.makeTempDir();
  const fifo = `${dir}/fifo`;
  try {
    const mk = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    assert.ok(mk.success);
    const controller = new AbortController();
    const stream = readTraceeFile(fifo, { signal: controller.signal });
    const got: SocketEvent[] = [];
    const reading = (async () => {
      for await (const e of stream) {
        got.push(e);
        controller.abort(); // stop after the first event; the writer keeps the FIFO open
      }
    })();
    const writer = await Deno.open(fifo, { write: true });
    await writer.write(new TextEncoder().encode(lines("close.v0.8-flat.jsonl")[0] + "\n"));
    await withDeadline(reading, 10_000, "reading stops after the abort");
    writer.close();
    assert.equal(got.length, 1);
    assert.equal((await stream.exit).stopped, true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readTraceeFile: '-' reads stdin", async () => {
  const adapterUrl = new URL("./adapter.ts", import.meta.url).href;
  const code = `import { readTraceeFile } from ${JSON.stringify(adapterUrl)};
    const s = readTraceeFile("-"); const out = [];
    for await (const e of s) out.push(e.kind);
    console.log(JSON.stringify({ out, stats: s.stats, exit: await s.exit }));`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", code],
    cwd: new URL("../..", import.meta.url).pathname,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(Deno.readFileSync(FIXTURES + "socket_bind_listen_close.v0.24.constructed.jsonl"));
  await w.close();
  const out = await withDeadline(child.output(), 30_000, "deno eval reading stdin");
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const result = JSON.parse(new TextDecoder().decode(out.stdout));
  assert.deepEqual(result.out, ["socket", "socket", "bind", "listen", "close", "exit"]);
  assert.equal(result.exit.success, true);
});

// ---------------------------------------------------------------------------------------------------------------
// The stand-in tracee

/** Options that run the stand-in tracee: its directory first on PATH. */
function fakeEnv(extra: Record<string, string>): Record<string, string> {
  const wrapper = FAKE_TRACEE_DIR + "tracee";
  if ((Deno.statSync(wrapper).mode! & 0o111) === 0) Deno.chmodSync(wrapper, 0o755);
  return {
    PATH: `${FAKE_TRACEE_DIR.replace(/\/$/, "")}:${Deno.env.get("PATH") ?? ""}`,
    FAKE_TRACEE_DENO: Deno.execPath(),
    ...extra,
  };
}

/** Stop a stream that may still run, and wait for it (test clean-up). */
async function settle(stream: TraceeStream, controller: AbortController): Promise<void> {
  controller.abort();
  await withDeadline(stream.exit, 20_000, "tracee exits");
}

Deno.test("runTracee: replays events and gets TRACE_EBPF_EVENTS, TRACEE_ARGS and the output flag", async () => {
  const dir = await Deno.makeTempDir();
  const controller = new AbortController();
  try {
    const settings = traceeSettingsFromEnv(envOf({
      TRACE_EBPF_EVENTS: "socket,bind,listen,close,sched_process_exit",
      TRACEE_ARGS: `--scope 'comm=python3' --output option:parse-arguments`,
    }));
    const stream = runTracee({
      ...settings,
      signal: controller.signal,
      env: fakeEnv({
        FAKE_TRACEE_ARGS_FILE: `${dir}/args.json`,
        FAKE_TRACEE_FILES: [
          FIXTURES + "net_packet_tcp.v0.20.jsonl",
          FIXTURES + "socket_bind_listen_close.v0.24.constructed.jsonl",
        ].join(":"),
      }),
    });
    const got = await collect(stream);
    const expected = JSON.parse(
      Deno.readTextFileSync(EXPECTED + "socket_bind_listen_close.v0.24.constructed.json"),
    );
    assert.deepEqual(got, expected.events);
    assert.deepEqual(stream.stats, { used: 6, skipped: 6, events: 6 });
    const exit = await stream.exit;
    assert.deepEqual([exit.code, exit.success, exit.stopped], [0, true, false]);
    assert.deepEqual(JSON.parse(await Deno.readTextFile(`${dir}/args.json`)), [
      "--scope",
      "comm=python3",
      "--output",
      "option:parse-arguments",
      "--output",
      "json",
      "--events",
      "socket,bind,listen,close,sched_process_exit",
    ]);
  } finally {
    controller.abort();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runTracee: an abort stops a tracee that stays alive", async () => {
  const controller = new AbortController();
  const stream = runTracee({
    signal: controller.signal,
    env: fakeEnv({
      FAKE_TRACEE_STAY: "1",
      FAKE_TRACEE_FILES: FIXTURES + "security_socket_listen.v0.24.constructed.jsonl",
    }),
  });
  try {
    const got: SocketEvent[] = [];
    await withDeadline(
      (async () => {
        for await (const e of stream) {
          got.push(e);
          if (got.length === 2) controller.abort();
        }
      })(),
      20_000,
      "events, then the end after the abort",
    );
    assert.deepEqual(got.map((e) => [e.kind, e.port]), [["listen", 80], ["listen", 8080]]);
    const exit = await stream.exit;
    assert.deepEqual([exit.stopped, exit.success, exit.signal], [true, false, "SIGTERM"]);
  } finally {
    await settle(stream, controller);
  }
});

Deno.test("runTracee: breaking out of the loop stops tracee too", async () => {
  const controller = new AbortController();
  const stream = runTracee({
    signal: controller.signal,
    env: fakeEnv({
      FAKE_TRACEE_STAY: "1",
      FAKE_TRACEE_FILES: FIXTURES + "security_socket_listen.v0.24.constructed.jsonl",
    }),
  });
  try {
    await withDeadline(
      (async () => {
        for await (const _ of stream) break;
      })(),
      20_000,
      "the first event",
    );
    const exit = await withDeadline(stream.exit, 20_000, "tracee exits after the break");
    assert.equal(exit.stopped, true);
  } finally {
    await settle(stream, controller);
  }
});

Deno.test("runTracee: a tracee ignoring SIGTERM is killed after the grace period", async () => {
  const controller = new AbortController();
  const stream = runTracee({
    signal: controller.signal,
    killTimeoutMs: 200,
    env: fakeEnv({
      FAKE_TRACEE_STAY: "1",
      FAKE_TRACEE_IGNORE_TERM: "1",
      FAKE_TRACEE_FILES: FIXTURES + "close.v0.8-flat.jsonl",
    }),
  });
  try {
    const got: SocketEvent[] = [];
    await withDeadline(
      (async () => {
        for await (const e of stream) {
          got.push(e);
          controller.abort(); // its first line comes after it installed the SIGTERM handler
        }
      })(),
      20_000,
      "the end after SIGKILL",
    );
    assert.equal(got.length, 1);
    const exit = await stream.exit;
    assert.deepEqual([exit.stopped, exit.signal], [true, "SIGKILL"]);
  } finally {
    await settle(stream, controller);
  }
});

Deno.test("runTracee: stopping before iterating releases everything", async () => {
  const controller = new AbortController();
  const stream = runTracee({ signal: controller.signal, env: fakeEnv({ FAKE_TRACEE_STAY: "1" }) });
  controller.abort();
  const exit = await withDeadline(stream.exit, 20_000, "tracee exits");
  assert.equal(exit.stopped, true);
});

Deno.test("runTracee: a missing tracee is TraceeUnavailableError naming what was tried", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.throws(() => runTracee({ env: { PATH: `${dir}:/nonexistent-bin` } }), (e) => {
      assert.ok(e instanceof TraceeUnavailableError && e instanceof EngineUnavailableError);
      assert.deepEqual(e.tried, [`${dir}/tracee`, "/nonexistent-bin/tracee"]);
      assert.match(
        e.message,
        /tracee cannot run: no executable "tracee" \(tried .*nonexistent-bin\/tracee\)/,
      );
      return true;
    });
    // A file that is there but not executable does not count.
    await Deno.writeTextFile(`${dir}/tracee`, "#!/bin/sh\n");
    assert.throws(() => runTracee({ env: { PATH: dir } }), TraceeUnavailableError);
    assert.throws(() => runTracee({ command: "/nonexistent/tracee" }), /\/nonexistent\/tracee/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runTracee: a tracee that fails surfaces its stderr", async () => {
  const controller = new AbortController();
  const stream = runTracee({
    signal: controller.signal,
    env: fakeEnv({
      FAKE_TRACEE_STDERR: "tracee: BPF program load failed: operation not permitted\n",
      FAKE_TRACEE_EXIT_CODE: "1",
      FAKE_TRACEE_FILES: FIXTURES + "close.v0.8-flat.jsonl",
    }),
  });
  try {
    const got: SocketEvent[] = [];
    const err = await withDeadline(
      (async () => {
        try {
          for await (const e of stream) got.push(e);
        } catch (e) {
          return e;
        }
      })(),
      20_000,
      "the failure",
    );
    assert.equal(got.length, 1, "events before the failure still arrive");
    assert.ok(err instanceof TraceeExitError, String(err));
    assert.match(err.message, /exited with code 1: tracee: BPF program load failed: operation not permitted/);
    const exit = await stream.exit;
    assert.deepEqual([exit.code, exit.success, exit.stopped], [1, false, false]);
    assert.match(exit.stderr, /operation not permitted/);
  } finally {
    await settle(stream, controller);
  }
});
