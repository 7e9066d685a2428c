/**
 * The wire contract: one port event, as every portwatch engine emits it and the listener stores it.
 *
 * The seed's fields (`event`, `port`, `pids`, `last_pids`, `container_id`, `container_name`, `source`) keep
 * their names and meaning. Fields this version does not know are kept as they came (loose objects), so older
 * and newer watchers and listeners interoperate.
 * @module
 */
import { z } from "zod";

/** Where an event came from; the seed's values, unchanged. */
export const SOURCES = [
  "polling",
  "ebpf",
  "fallback",
  "shutdown",
  "shutdown-fallback",
  "shutdown-ebpf",
] as const;
/** Where an event came from. */
export type Source = (typeof SOURCES)[number];

/**
 * `open`: a port started listening (TCP) or was bound (UDP); `close`: it no longer is; `change`: it stays open,
 * but the processes holding its sockets or the addresses it is bound to changed (a forked child kept the socket
 * and the parent closed its copy, a SO_REUSEPORT twin in another process opened or closed, a second address was
 * bound). A consumer that knows only open and close may ignore `change`: the port's open/close story is whole
 * without it.
 */
export const EVENT_KINDS = ["open", "close", "change"] as const;
/** `open`, `close` or `change`. */
export type EventKind = (typeof EVENT_KINDS)[number];

/** Transport protocols portwatch tracks. */
export const PROTOS = ["tcp", "udp"] as const;
/** `tcp` or `udp`. */
export type Proto = (typeof PROTOS)[number];

const pid = z.number().int().positive();
const port = z.number().int().min(1).max(65535);

/** The process that owns the socket, as read from /proc or from an eBPF probe. */
export const ProcessSchema = z.looseObject({
  pid: pid.optional().describe("the pid this description is of"),
  comm: z.string().describe("the kernel's short command name (/proc/<pid>/comm)"),
  cmdline: z.string().describe("the command line, arguments separated by spaces"),
  uid: z.number().int().nonnegative().describe("the real user id"),
});
/** The process that owns the socket. */
export type ProcessInfo = z.infer<typeof ProcessSchema>;

/** Shape shared by the strict contract and the lenient ingest variant. */
const fields = {
  id: z.string().min(1).max(128).describe(
    "unique per event, sortable by time (UUIDv7); a retry carries the same id and is stored once",
  ),
  event: z.enum(EVENT_KINDS).describe(
    "open: started listening or bound; close: no longer; change: still open, its holders (pids) or addresses " +
      "changed",
  ),
  port: port.describe("the local port"),
  proto: z.enum(PROTOS).describe("transport protocol"),
  family: z.union([z.literal(4), z.literal(6)]).describe(
    "4 or 6; a port bound on both families reports the family of its first address",
  ),
  addrs: z.array(z.string()).describe(
    "every local address the port is bound to now, e.g. 0.0.0.0 and :: (on close: the last ones)",
  ),
  pids: z.array(pid).describe("pids that hold one of the port's sockets now (empty on close)"),
  last_pids: z.array(pid).optional().describe(
    "on close: the pids that held it last; on change: the pids that held it before the change",
  ),
  last_addrs: z.array(z.string()).optional().describe("on change: the addresses it was bound to before"),
  container_id: z.string().nullable().describe("container id, or null on a host"),
  container_name: z.string().nullable().describe(
    "container name as `docker ps` shows it (from the runtime's state on disk, else the container's host name), " +
      "or null on a host",
  ),
  image: z.string().nullable().optional().describe(
    "the container's image as the user gave it (e.g. debian:bookworm), from the runtime's state on disk; " +
      "null when unknown or on a host",
  ),
  compose_project: z.string().nullable().optional().describe(
    "compose project of the container (label com.docker.compose.project); null when none or unknown",
  ),
  compose_service: z.string().nullable().optional().describe(
    "compose service of the container (label com.docker.compose.service); null when none or unknown",
  ),
  source: z.enum(SOURCES).describe("the engine that saw the change"),
  observed_at: z.iso.datetime({ offset: true }).describe("the watcher's clock when the change was seen"),
  host: z.string().min(1).describe("host name of the machine the watcher runs on"),
  netns: z.number().int().nonnegative().describe("network namespace inode the socket lives in"),
  process: ProcessSchema.optional().describe("the process that owns the socket, when known"),
  policy: z.object({
    verdict: z.enum(["allow", "alert"]).describe("allow: expected; alert: should not be open"),
    rule: z.string().nullable().describe("the rule that decided, or null for the policy's default"),
    severity: z.enum(["info", "warning", "critical"]).optional().describe("for an alert"),
    description: z.string().optional().describe("the rule's description"),
  }).optional().describe(
    "on open and change, with a policy (POLICY_PATH): the listener's verdict for the port, set at ingest",
  ),
};

/** One port event exactly as portwatch's engines emit it (every field but `last_pids`/`process` set). */
export const PortEventSchema = z.looseObject(fields).meta({
  title: "PortEvent",
  description:
    "A port that started or stopped listening, or whose holders or addresses changed, as emitted by a portwatch engine.",
});
/** One port event exactly as portwatch's engines emit it. */
export type PortEvent = z.infer<typeof PortEventSchema>;

/** Seed watchers sent pids as text ("123,456" or "123 456"); accept that and store numbers. */
const pidList = z.preprocess(
  (v) =>
    typeof v === "string"
      ? v.split(/[\s,]+/).filter((s) => s !== "").map((s) => (/^\d+$/.test(s) ? Number(s) : s))
      : typeof v === "number"
      ? [v]
      : v,
  z.array(pid),
);
const portLoose = z.preprocess((v) => (typeof v === "string" && /^\d+$/.test(v) ? Number(v) : v), port);

/**
 * What `POST /ingest` accepts: the contract above, with the fields the seed's watchers did not send made
 * optional (`id` is then assigned by the listener), and seed-style text pids ("123,456") and numeric-string
 * ports accepted and stored as numbers.
 */
export const IngestEventSchema = z.looseObject({
  ...fields,
  id: fields.id.optional(),
  port: portLoose.describe("the local port"),
  pids: pidList.optional().describe("pids that hold the socket now"),
  last_pids: pidList.optional().describe(
    "on close: the pids that held it last; on change: before the change",
  ),
  proto: fields.proto.optional(),
  family: fields.family.optional(),
  addrs: fields.addrs.optional(),
  container_id: fields.container_id.optional(),
  container_name: fields.container_name.optional(),
  observed_at: fields.observed_at.optional(),
  host: fields.host.optional(),
  netns: fields.netns.optional(),
}).meta({
  title: "IngestEvent",
  description: "A port event as POST /ingest accepts it: the PortEvent contract, seed-compatible.",
});
/** A port event as the listener accepts it (after normalisation). */
export type IngestEvent = z.infer<typeof IngestEventSchema>;

/** A stored line: the listener's `ts` first, then the event (or `message`) fields. */
export type StoredRecord = { ts: string; id: string; [key: string]: unknown };
