import assert from "node:assert/strict";
import { tryCommand } from "./try_command.ts";

Deno.test("tryCommand: success, a failure with its stderr, and a command that is not installed", async () => {
  assert.deepEqual(await tryCommand("true", []), { success: true, stderr: "" });
  assert.deepEqual(await tryCommand("sh", ["-c", "echo ' no good ' >&2; exit 3"]), {
    success: false,
    stderr: "no good",
  });
  const missing = await tryCommand("portwatch-no-such-command", []);
  assert.equal(missing.success, false);
  assert.match(missing.stderr, /portwatch-no-such-command|No such file|not found/i);
});
