import assert from "node:assert/strict";
import { assertNoneLeft, MARK_VARIABLE, markedPids, runToExit } from "./exit.ts";

Deno.test("runToExit: exit code, output, and a mark its processes carry", async () => {
  const end = await runToExit(["sh", "-c", `echo out; echo err >&2; echo "$${MARK_VARIABLE}"; exit 3`]);
  assert.equal(end.code, 3);
  assert.equal(end.stdout, `out\n${end.mark}\n`);
  assert.equal(end.stderr, "err\n");
  await assertNoneLeft(end.mark);
});

Deno.test("assertNoneLeft: a process left behind (a backgrounded grandchild) is named, killed, and fails", async () => {
  const end = await runToExit(["sh", "-c", "sleep 30 >/dev/null 2>&1 & echo $!"]);
  const left = Number(end.stdout.trim());
  assert.deepEqual(markedPids(end.mark), [left]);
  await assert.rejects(
    assertNoneLeft(end.mark, 200),
    new RegExp(`processes left running: ${left} \\(sleep 30\\)`),
  );
  await assertNoneLeft(end.mark); // killed by the failed check: gone now
});

Deno.test("runToExit: a program that does not exit in time is killed and the run throws", async () => {
  await assert.rejects(runToExit(["sleep", "30"], { timeoutMs: 200 }), /sleep 30 did not exit within 200 ms/);
});
