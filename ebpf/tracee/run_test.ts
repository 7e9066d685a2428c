import assert from "node:assert/strict";
import { envOf } from "../../infra/env.ts";
import { EngineUnavailableError } from "../event_source.ts";
import type { SocketEvent } from "../socket_event.ts";
import { traceeSettingsFromEnv } from "./settings.ts";
import {
  readTraceeFile,
  runTracee,
  TraceeExitError,
  type TraceeStream,
  TraceeUnavailableError,
} from "./run.ts";
import { FAKE_TRACEE_DIR } from "./testing/fake_tracee.ts";
import {
  fixtureLines as lines,
  TRACEE_EXPECTED as EXPECTED,
  TRACEE_FIXTURES as FIXTURES,
} from "./testing/fixtures.ts";
import { collect, withDeadline } from "./testing/collect.ts";

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
  const adapterUrl = new URL("./run.ts", import.meta.url).href;
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

/** Every event of `stream`, aborting through `controller` once `count` have come (with a deadline). */
async function readThenAbort(
  stream: TraceeStream,
  controller: AbortController,
  count: number,
  what: string,
): Promise<SocketEvent[]> {
  const got: SocketEvent[] = [];
  await withDeadline(
    (async () => {
      for await (const e of stream) {
        got.push(e);
        if (got.length >= count) controller.abort();
      }
    })(),
    20_000,
    what,
  );
  return got;
}

/** Run the stand-in tracee with `extra` settings in its environment, stoppable through the controller. */
function startFake(
  extra: Record<string, string>,
  options: { killTimeoutMs?: number } = {},
): { controller: AbortController; stream: TraceeStream } {
  const controller = new AbortController();
  return { controller, stream: runTracee({ signal: controller.signal, ...options, env: fakeEnv(extra) }) };
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
  const { controller, stream } = startFake({
    FAKE_TRACEE_STAY: "1",
    FAKE_TRACEE_FILES: FIXTURES + "security_socket_listen.v0.24.constructed.jsonl",
  });
  try {
    const got = await readThenAbort(stream, controller, 2, "events, then the end after the abort");
    assert.deepEqual(got.map((e) => [e.kind, e.port]), [["listen", 80], ["listen", 8080]]);
    const exit = await stream.exit;
    assert.deepEqual([exit.stopped, exit.success, exit.signal], [true, false, "SIGTERM"]);
  } finally {
    await settle(stream, controller);
  }
});

Deno.test("runTracee: breaking out of the loop stops tracee too", async () => {
  const { controller, stream } = startFake({
    FAKE_TRACEE_STAY: "1",
    FAKE_TRACEE_FILES: FIXTURES + "security_socket_listen.v0.24.constructed.jsonl",
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
  const { controller, stream } = startFake({
    FAKE_TRACEE_STAY: "1",
    FAKE_TRACEE_IGNORE_TERM: "1",
    FAKE_TRACEE_FILES: FIXTURES + "close.v0.8-flat.jsonl",
  }, { killTimeoutMs: 200 });
  try {
    // Its first line comes after it installed the SIGTERM handler.
    const got = await readThenAbort(stream, controller, 1, "the end after SIGKILL");
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
  const { controller, stream } = startFake({
    FAKE_TRACEE_STDERR: "tracee: BPF program load failed: operation not permitted\n",
    FAKE_TRACEE_EXIT_CODE: "1",
    FAKE_TRACEE_FILES: FIXTURES + "close.v0.8-flat.jsonl",
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
