/**
 * `STORE_URL`: checked at start (a clear error naming the setting, the value without its password, and what
 * is accepted) and shown in logs without its password.
 * @module
 */
import { ConfigError } from "../../infra/config_error.ts";

const ACCEPTED = "a PostgreSQL URL such as postgres://user:password@db.example:5432/portwatch " +
  "(scheme postgres:// or postgresql://, with a host)";

/** `url` with its password replaced by `***` (as given when it does not parse). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return url.replace(/(\/\/[^:/@]*:)[^@]*@/, "$1***@");
  }
}

/** Check a store URL given as `name`; returns it trimmed, or throws a ConfigError. */
export function parseStoreUrl(name: string, value: string): string {
  const v = value.trim();
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new ConfigError(name, redactUrl(v), ACCEPTED);
  }
  if (u.protocol !== "postgres:" && u.protocol !== "postgresql:") {
    throw new ConfigError(name, redactUrl(v), `${ACCEPTED}; ${u.protocol}// is not supported`);
  }
  if (u.hostname === "") throw new ConfigError(name, redactUrl(v), `${ACCEPTED}; the host is missing`);
  if (u.port !== "" && !(Number(u.port) >= 1 && Number(u.port) <= 65535)) {
    throw new ConfigError(name, redactUrl(v), `${ACCEPTED}; port ${u.port} is not 1-65535`);
  }
  return v;
}
