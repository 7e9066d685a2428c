import assert from "node:assert/strict";
import { parsePortList } from "./port_list.ts";
import { ConfigError } from "./config_error.ts";

Deno.test("parsePortList: commas, spaces and ranges, merged", () => {
  const set = parsePortList("WATCH_PORTS", "3000,5000-5002 7001  5001");
  assert.equal(set.toString(), "3000,5000-5002,7001");
  assert.equal(set.size, 5);
  for (const p of [3000, 5000, 5001, 5002, 7001]) assert.ok(set.has(p), `${p}`);
  for (const p of [2999, 4999, 5003, 7000, 65535]) assert.ok(!set.has(p), `${p}`);
});

Deno.test("parsePortList: bad values name the variable and the bad part", () => {
  for (
    const [value, part] of [["70000", "70000"], ["9-3", "runs backwards"], ["80,http", '"http"'], ["", ""]]
  ) {
    assert.throws(() => parsePortList("WATCH_PORTS", value), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(e.setting, "WATCH_PORTS");
      assert.ok(e.message.includes(part), e.message);
      return true;
    });
  }
});
