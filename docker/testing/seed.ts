/**
 * The seed's own commands against the live compose stack (docker exec into the testers and the listener), and
 * the checks its tests make of the events they cause: one open (and close) per port, attributed as
 * `docker inspect` says.
 * @module
 */
import assert from "node:assert/strict";
import { count, inspect, ok, type Stored, waitEvents } from "./live.ts";

/** The seed's node one-liner in nodejs-tester, detached: an HTTP server (or a bare TCP server) on `port`. */
export async function nodeServer(port: number, kind: "http" | "net" = "http"): Promise<void> {
  const server = kind === "http" ? "require('http').createServer(()=>{})" : "require('net').createServer()";
  await ok(["docker", "exec", "-d", "nodejs-tester", "node", "-e", `${server}.listen(${port})`]);
}

/** The seed's way to close a port: kill what lsof says holds it, in `container`. */
export async function killHolder(container: string, port: number): Promise<void> {
  await ok(["docker", "exec", container, "bash", "-lc", `kill $(lsof -t -i :${port})`]);
}

/** Once `port` is seen open in `container`, the seed's close: `pid=$(lsof -t -i :PORT ...) && kill $pid`. */
export async function seedClose(listener: string, container: string, port: number): Promise<void> {
  await waitEvents(listener, port, `${port} open`, (es) => count(es, "open") === 1, { container });
  await ok([
    "docker",
    "exec",
    container,
    "bash",
    "-lc",
    `pid=$(lsof -t -i :${port} || true); [ -n "$pid" ] && kill $pid || true`,
  ]);
}

/** `docker exec listner-api sh -lc CMD`, as the seed's README runs its log commands. */
export function inListener(cmd: string): Promise<string> {
  return ok(["docker", "exec", "listner-api", "sh", "-lc", cmd]);
}

/** Checks an event's attribution against `docker inspect` of its container. */
export async function attributed(e: Stored, container: string): Promise<void> {
  const c = await inspect(container);
  assert.equal(e.container_id, c.id, `${container}: container_id is the full id`);
  assert.equal(e.container_name, container, "container_name as docker ps shows it");
  assert.equal(e.image, c.image, "image as docker inspect gives it");
  assert.equal(e.compose_project, c.project, "compose project");
  assert.equal(e.compose_service, c.service, "compose service");
}

/** One open and (when `closed`) one close of `port` in `container`, from `source`, attributed right. */
export async function openedOnce(
  listener: string,
  port: number,
  container: string,
  { closed, source = "polling" }: { closed: boolean; source?: string },
): Promise<Stored[]> {
  const events = await waitEvents(
    listener,
    port,
    `${container} ${port} ${closed ? "opened and closed" : "opened"} (${source})`,
    (es) => count(es, "open", source) >= 1 && (!closed || count(es, "close", source) >= 1),
    { container },
  );
  const mine = events.filter((e) => e.source === source);
  assert.equal(count(mine, "open"), 1, `one open of ${port}: ${JSON.stringify(mine)}`);
  assert.equal(count(mine, "close"), closed ? 1 : 0, `${closed ? "one close" : "no close"} of ${port}`);
  for (const e of mine) await attributed(e, container);
  return events;
}
