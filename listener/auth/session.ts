/**
 * The live page's session: a cookie that proves its holder once gave the listener's token (LISTENER_TOKEN) to
 * `POST /signin`, without being the token. Its value is `<expiry>.<mac>`: the expiry in epoch seconds, and the
 * base64url HMAC-SHA256 of that expiry keyed with the token. So a session ends by itself at its expiry, every
 * session ends when the token changes, and nothing stored in the browser gives the token away. No state on the
 * listener: replicas that share a token accept each other's sessions.
 *
 * Pure but for the clock, which tests inject.
 * @module
 */

/** The session cookie's name. */
export const SESSION_COOKIE = "portwatch_session";

/** How long a session lasts by default: 12 hours, in seconds. */
export const SESSION_MAX_AGE = 12 * 60 * 60;

/** What {@link createSessions} needs. */
export interface SessionOptions {
  /** The listener's token (LISTENER_TOKEN): the HMAC key. */
  token: string;
  /** Seconds a new session lasts; default {@link SESSION_MAX_AGE}. */
  maxAgeSeconds?: number;
  /** The clock, in epoch ms; default `Date.now`. */
  now?: () => number;
}

/** A new session cookie's value and when it expires. */
export interface IssuedSession {
  /** The cookie's value: `<expiry-epoch-seconds>.<base64url HMAC-SHA256(token, expiry)>`. */
  value: string;
  /** Its expiry, epoch seconds. */
  expires: number;
  /** Seconds from now to the expiry (the cookie's Max-Age). */
  maxAge: number;
}

/** Makes and checks session cookie values for one token. */
export interface Sessions {
  /** A new session, valid for the configured max age from now. */
  issue(): Promise<IssuedSession>;
  /**
   * The expiry (epoch seconds) of a session cookie value this token made and that has not expired; null for
   * anything else (malformed, expired, made with another token, expiry beyond the max age).
   */
  verify(value: string | undefined | null): Promise<number | null>;
}

const encoder = new TextEncoder();

/** A cookie value's shape: up to 12 digits of expiry, a dot, 43 base64url characters (32 bytes). */
const VALUE = /^(\d{1,12})\.([A-Za-z0-9_-]{43})$/;

/**
 * Bytes as base64url without padding.
 * @example
 * ```ts
 * base64url(new Uint8Array([251, 255])); // "-_8"
 * ```
 */
export function base64url(bytes: Uint8Array): string {
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The bytes of base64url text (no padding); throws on text that is not base64url. */
function fromBase64url(text: string): Uint8Array<ArrayBuffer> {
  const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4);
  const raw = atob(padded);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

/**
 * Sessions for `token`: the HMAC key is imported once, on first use, and kept.
 * @example
 * ```ts
 * const sessions = createSessions({ token: "s3cret", now: () => Date.parse("2026-01-01T00:00:00Z") });
 * const { value } = await sessions.issue(); // "1767268800.<43 characters>"
 * await sessions.verify(value); // 1767268800
 * await createSessions({ token: "other" }).verify(value); // null: another token
 * ```
 */
export function createSessions(options: SessionOptions): Sessions {
  const maxAge = options.maxAgeSeconds ?? SESSION_MAX_AGE;
  if (!Number.isInteger(maxAge) || maxAge < 1 || maxAge > 400 * 24 * 3600) {
    throw new Error(
      `session max age ${maxAge} is not valid: give whole seconds from 1 to 34560000 (400 days, browsers' limit)`,
    );
  }
  if (options.token === "") throw new Error("sessions need a token: LISTENER_TOKEN is empty");
  const now = options.now ?? Date.now;
  let key: Promise<CryptoKey> | undefined;
  const hmacKey = () =>
    key ??= crypto.subtle.importKey(
      "raw",
      encoder.encode(options.token),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign", "verify"],
    );
  return {
    async issue() {
      const expires = Math.floor(now() / 1000) + maxAge;
      const mac = await crypto.subtle.sign("HMAC", await hmacKey(), encoder.encode(String(expires)));
      return { value: `${expires}.${base64url(new Uint8Array(mac))}`, expires, maxAge };
    },
    async verify(value) {
      const m = value ? VALUE.exec(value) : null;
      if (!m) return null;
      const expires = Number(m[1]);
      const nowSeconds = now() / 1000;
      // Expired, or further away than a session lasts (no value this listener made can be).
      if (expires <= nowSeconds || expires > nowSeconds + maxAge + 1) return null;
      let mac: Uint8Array<ArrayBuffer>;
      try {
        mac = fromBase64url(m[2]);
      } catch {
        return null;
      }
      // crypto.subtle.verify compares in constant time.
      const ok = await crypto.subtle.verify("HMAC", await hmacKey(), mac, encoder.encode(m[1]));
      return ok ? expires : null;
    },
  };
}

/**
 * True when `given` is `secret`, compared in time that does not depend on where they differ: both are hashed
 * (SHA-256) and the digests compared byte by byte without stopping early.
 * @example
 * ```ts
 * await sameSecret("s3cret", "s3cret"); // true
 * await sameSecret("s3cre", "s3cret"); // false
 * ```
 */
export async function sameSecret(given: string, secret: string): Promise<boolean> {
  const [a, b] = await Promise.all([
    crypto.subtle.digest("SHA-256", encoder.encode(given)),
    crypto.subtle.digest("SHA-256", encoder.encode(secret)),
  ]);
  const x = new Uint8Array(a), y = new Uint8Array(b);
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i] ^ y[i];
  return diff === 0;
}
