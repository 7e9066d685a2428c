/**
 * Filters shared by `GET /events`, `GET /events/stream` and `GET /ports`: parsed from query parameters with
 * zod (a bad value gets a 400 naming the parameter and what is accepted), applied as a pure predicate.
 * @module
 */
import { z } from "zod";
import { EVENT_KINDS, PROTOS, type Source, SOURCES } from "../events/schema.ts";
import { parsePortList, type PortSet } from "../infra/port_list.ts";
import type { ConfigError } from "../infra/config_error.ts";

/** What a record must match; every field is optional and they combine with AND. */
export interface EventFilter {
  ports?: PortSet;
  proto?: (typeof PROTOS)[number];
  event?: (typeof EVENT_KINDS)[number];
  sources?: Set<Source>;
  /** Container id (whole or a prefix of 6+ characters) or name. */
  container?: string;
  host?: string;
  /** ISO timestamps compared with the record's `ts`; since is inclusive, until exclusive. */
  since?: string;
  until?: string;
}

const UNITS: Record<string, number> = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 };

/** A time bound: an ISO 8601 date-time, or a duration before `now` such as 30s, 15m, 2h, 7d. */
export function parseTimeBound(value: string, now = Date.now()): string | undefined {
  const rel = /^(\d+(?:\.\d+)?)([smhd])$/.exec(value.trim());
  if (rel) return new Date(now - Number(rel[1]) * UNITS[rel[2]]).toISOString();
  if (!/^\d{4}-\d{2}-\d{2}/.test(value.trim())) return undefined;
  const t = Date.parse(value.trim());
  return Number.isNaN(t) ? undefined : new Date(t).toISOString();
}

const timeParam = (name: string) =>
  z.string().transform((v, ctx) => {
    const iso = parseTimeBound(v);
    if (iso === undefined) {
      ctx.addIssue({
        code: "custom",
        message:
          `${name}=${JSON.stringify(v)}: expected an ISO 8601 time (2026-11-25T08:00:00Z) or a duration ` +
          `before now (30s, 15m, 2h, 7d)`,
      });
      return z.NEVER;
    }
    return iso;
  });

/** Query parameters common to the event endpoints. */
export const filterParams = {
  port: z.string().transform((v, ctx) => {
    try {
      return parsePortList("port", v);
    } catch (e) {
      ctx.addIssue({ code: "custom", message: (e as ConfigError).message });
      return z.NEVER;
    }
  }).optional(),
  proto: z.enum(PROTOS).optional(),
  event: z.enum(EVENT_KINDS).optional(),
  source: z.string().transform((v, ctx) => {
    const list = v.split(",").map((s) => s.trim()).filter((s) => s !== "");
    const bad = list.filter((s) => !(SOURCES as readonly string[]).includes(s));
    if (bad.length > 0 || list.length === 0) {
      ctx.addIssue({
        code: "custom",
        message: `source=${JSON.stringify(v)}: expected one or more of ${
          SOURCES.join(", ")
        } (comma-separated)`,
      });
      return z.NEVER;
    }
    return new Set(list as Source[]);
  }).optional(),
  container: z.string().min(1).optional(),
  host: z.string().min(1).optional(),
  since: timeParam("since").optional(),
  until: timeParam("until").optional(),
};

/** `GET /events` parameters: the filters, plus `limit` (1-10000, default 100) and `order` (desc default). */
export const EventsQuerySchema = z.object({
  ...filterParams,
  limit: z.coerce.number().int().min(1).max(10_000).default(100),
  order: z.enum(["asc", "desc"]).default("desc"),
});

/** Parsed `GET /events` parameters. */
export type EventsQuery = z.infer<typeof EventsQuerySchema>;

/** Build an {@link EventFilter} from parsed parameters. */
export function toFilter(q: Partial<EventsQuery>): EventFilter {
  return {
    ports: q.port,
    proto: q.proto,
    event: q.event,
    sources: q.source,
    container: q.container,
    host: q.host,
    since: q.since,
    until: q.until,
  };
}

/** True when the container given by id and name is the one `wanted` names. */
export function containerMatches(wanted: string, id: unknown, name: unknown): boolean {
  if (typeof id === "string" && (id === wanted || (wanted.length >= 6 && id.startsWith(wanted)))) return true;
  return typeof name === "string" &&
    (name === wanted || name === `/${wanted}` || name.replace(/^\//, "") === wanted);
}

/** True when `r` passes every condition of `f`. */
export function matches(r: Record<string, unknown>, f: EventFilter): boolean {
  if (f.ports && !(typeof r.port === "number" && f.ports.has(r.port))) return false;
  if (f.proto && r.proto !== f.proto) return false;
  if (f.event && r.event !== f.event) return false;
  if (f.sources && !f.sources.has(r.source as Source)) return false;
  if (f.container && !containerMatches(f.container, r.container_id, r.container_name)) return false;
  if (f.host && r.host !== f.host) return false;
  if (f.since && !(typeof r.ts === "string" && r.ts >= f.since)) return false;
  if (f.until && !(typeof r.ts === "string" && r.ts < f.until)) return false;
  return true;
}

/** True when the filter has no condition. */
export function isEmptyFilter(f: EventFilter): boolean {
  return Object.values(f).every((v) => v === undefined);
}
