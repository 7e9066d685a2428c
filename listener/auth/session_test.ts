import assert from "node:assert/strict";
import { base64url, createSessions, sameSecret, SESSION_MAX_AGE } from "./session.ts";

const T0 = Date.parse("2026-01-01T00:00:00Z");

/** A clock the test moves. */
function clock(start = T0) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

Deno.test("session: the value is <expiry>.<base64url HMAC-SHA256(token, expiry)>, never the token", async () => {
  const c = clock();
  const sessions = createSessions({ token: "s3cret", now: c.now });
  const issued = await sessions.issue();
  const expires = T0 / 1000 + SESSION_MAX_AGE;
  assert.equal(issued.expires, expires);
  assert.equal(issued.maxAge, 12 * 3600);
  assert.match(issued.value, /^\d+\.[A-Za-z0-9_-]{43}$/);
  assert.ok(!issued.value.includes("s3cret"));
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode("s3cret"),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(String(expires)));
  assert.equal(issued.value, `${expires}.${base64url(new Uint8Array(mac))}`);
  assert.equal(await sessions.verify(issued.value), expires);
});

Deno.test("session: expires with its max age; another token, a forged expiry or junk is refused", async () => {
  const c = clock();
  const sessions = createSessions({ token: "s3cret", maxAgeSeconds: 60, now: c.now });
  const { value, expires } = await sessions.issue();
  assert.equal(await sessions.verify(value), expires);
  c.advance(59_000);
  assert.equal(await sessions.verify(value), expires, "valid until its expiry");
  c.advance(1_000);
  assert.equal(await sessions.verify(value), null, "expired at its expiry");
  c.advance(-60_000);
  // The token changed: every session made with the old one is refused.
  assert.equal(await createSessions({ token: "s3cret2", maxAgeSeconds: 60, now: c.now }).verify(value), null);
  // A later expiry with the old mac, a flipped mac character, junk.
  const [exp, mac] = value.split(".");
  assert.equal(await sessions.verify(`${Number(exp) + 30}.${mac}`), null);
  const flipped = (mac.startsWith("A") ? "B" : "A") + mac.slice(1);
  assert.equal(await sessions.verify(`${exp}.${flipped}`), null);
  for (const junk of [undefined, null, "", "s3cret", `${exp}.`, `.${mac}`, `${exp}.${mac}.x`, `-1.${mac}`]) {
    assert.equal(await sessions.verify(junk), null, String(junk));
  }
  // An expiry further away than a session lasts is not one this listener made, even with a right mac.
  const far = createSessions({ token: "s3cret", maxAgeSeconds: 3600, now: c.now });
  assert.equal(await sessions.verify((await far.issue()).value), null);
});

Deno.test("session: bad settings are refused, saying what is accepted", () => {
  assert.throws(() => createSessions({ token: "t", maxAgeSeconds: 0 }), /max age 0 .*1 to 34560000/);
  assert.throws(() => createSessions({ token: "t", maxAgeSeconds: 1.5 }), /whole seconds/);
  assert.throws(() => createSessions({ token: "" }), /LISTENER_TOKEN is empty/);
});

Deno.test("sameSecret: equal strings only", async () => {
  assert.equal(await sameSecret("s3cret", "s3cret"), true);
  for (const other of ["", "s3cre", "s3cret ", "S3cret", "s3cret\u0000"]) {
    assert.equal(await sameSecret(other, "s3cret"), false, JSON.stringify(other));
  }
});

Deno.test("base64url: no padding, URL-safe alphabet", () => {
  assert.equal(base64url(new Uint8Array([251, 255])), "-_8");
  assert.equal(base64url(new Uint8Array([])), "");
  assert.equal(base64url(new TextEncoder().encode("ab")), "YWI");
});
