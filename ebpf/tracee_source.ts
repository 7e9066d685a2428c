/** Tracee as a SocketEventSource (wired to the Tracee adapter once it lands). */
import { EngineUnavailableError, type SocketEventSource } from "./event_source.ts";

/** Start Tracee, or throw EngineUnavailableError saying why it cannot run. */
export function startTraceeSource(_env: Deno.Env): Promise<SocketEventSource> {
  return Promise.reject(new EngineUnavailableError("tracee", "the Tracee adapter is not wired yet"));
}
