/**
 * The PostgreSQL store's learned baselines (tables `baseline_scopes` and `baseline_ports`, migration 4),
 * shared by the replicas: a scope's window is the first one stored (INSERT ... ON CONFLICT DO NOTHING), and a
 * port is stored once.
 * @module
 */
import type { Sql } from "postgres";
import type { BaselineData, BaselinePort, BaselineScope } from "../../policy/baseline.ts";
import type { BaselineStore } from "../store_api.ts";

type Read = <T>(what: string, fn: (sql: Sql) => Promise<T>) => Promise<T>;

const iso = (v: unknown) => (v instanceof Date ? v.toISOString() : new Date(String(v)).toISOString());

function scopeOf(r: Record<string, unknown>): BaselineScope {
  return {
    key: String(r.key),
    kind: String(r.kind) as BaselineScope["kind"],
    value: String(r.value),
    host: r.host === null ? null : String(r.host),
    started_at: iso(r.started_at),
    ends_at: iso(r.ends_at),
  };
}

/** Baselines in PostgreSQL; `read` runs a statement with the store's error handling. */
export class PgBaselines implements BaselineStore {
  readonly shared = true;

  constructor(readonly read: Read) {}

  load(): Promise<BaselineData> {
    return this.read("baselines", async (sql) => {
      const scopes = (await sql`SELECT * FROM baseline_scopes ORDER BY key`).map(scopeOf);
      const ports: BaselinePort[] = (await sql`SELECT * FROM baseline_ports ORDER BY scope, proto, port`).map(
        (
          r,
        ) => ({
          scope: String(r.scope),
          proto: String(r.proto),
          port: Number(r.port),
          first_seen: iso(r.first_seen),
        }),
      );
      return { scopes, ports };
    });
  }

  add(data: BaselineData): Promise<BaselineScope[]> {
    return this.read("baselines", (sql) =>
      sql.begin(async (tx) => {
        if (data.scopes.length > 0) {
          await tx`INSERT INTO baseline_scopes ${
            tx(data.scopes, "key", "kind", "value", "host", "started_at", "ends_at")
          }
            ON CONFLICT (key) DO NOTHING`;
        }
        if (data.ports.length > 0) {
          // A port's scope may have been reset by another replica meanwhile: such ports are dropped.
          await tx`INSERT INTO baseline_ports (scope, proto, port, first_seen)
            SELECT p.scope, p.proto, p.port, p.first_seen::timestamptz
            FROM json_to_recordset(${JSON.stringify(data.ports)}::text::json)
              AS p(scope text, proto text, port integer, first_seen text)
            WHERE EXISTS (SELECT 1 FROM baseline_scopes s WHERE s.key = p.scope)
            ON CONFLICT DO NOTHING`;
        }
        const keys = data.scopes.map((s) => s.key);
        if (keys.length === 0) return [];
        return (await tx`SELECT * FROM baseline_scopes WHERE key IN ${tx(keys)}`).map(scopeOf);
      }) as Promise<BaselineScope[]>);
  }

  reset(keys?: readonly string[]): Promise<string[]> {
    return this.read("baselines", async (sql) => {
      const rows = keys
        ? keys.length === 0
          ? []
          : await sql`DELETE FROM baseline_scopes WHERE key IN ${sql(keys)} RETURNING key`
        : await sql`DELETE FROM baseline_scopes RETURNING key`;
      return rows.map((r) => String(r.key)).sort();
    });
  }
}
