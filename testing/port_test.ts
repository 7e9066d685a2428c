import assert from "node:assert/strict";
import { freePort } from "./port.ts";

Deno.test("freePort: a loopback port that can be bound right after", () => {
  const port = freePort();
  assert.ok(port > 0 && port < 65536);
  const l = Deno.listen({ hostname: "127.0.0.1", port });
  assert.equal((l.addr as Deno.NetAddr).port, port);
  l.close();
});
