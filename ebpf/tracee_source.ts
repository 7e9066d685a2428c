/** Tracee as a SocketEventSource (wired to the Tracee adapter once it lands). */
import type { EnvSource } from "../events/env.ts";
import { EngineUnavailableError, type SocketEventSource } from "./event_source.ts";

/** Start Tracee, or throw EngineUnavailableError saying why it cannot run. */
export function startTraceeSource(_env: EnvSource): Promise<SocketEventSource> {
  return Promise.reject(new EngineUnavailableError("tracee", "the Tracee adapter is not wired yet"));
}
