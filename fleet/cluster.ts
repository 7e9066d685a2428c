/**
 * The listeners the fleet talks to: replicas started here (over the file store, or over one PostgreSQL
 * started with the test harness or given by URL), or listeners given by URL and left alone.
 * @module
 */
import { startPostgres, type TestPostgres } from "../listener/pg/testing_postgres.ts";
import { Replica } from "./replica.ts";
import { treeCpuSeconds } from "./cpu.ts";

/** Where events are stored. */
export type StoreKind = "file" | "postgres";

/** What to start. */
export interface ClusterOptions {
  store: StoreKind;
  /** Replicas to start (the file store takes 1: each file listener is a store of its own). */
  replicas: number;
  /** Folder for logs (file store). */
  dir: string;
  /** A PostgreSQL to use instead of starting one (postgres store). */
  storeUrl?: string;
  /** Start PostgreSQL durable (fsync on), as in production (default false: the harness's fast setting). */
  durablePostgres?: boolean;
  /** Extra listener environment. */
  env?: Record<string, string>;
}

/**
 * Server settings of a durable (benchmark) PostgreSQL, beyond the harness's: the fleet writes some 40 MB of
 * WAL and 30 MB of table and index pages per second at 20,000 events/s. Room for the working set (so that
 * backends do not write out dirty pages themselves), and no checkpoint within a run (each one is followed by
 * full-page images of every page touched again). Durability is unchanged: fsync, synchronous_commit and
 * full_page_writes stay on.
 */
export const DURABLE_SETTINGS: Record<string, string> = {
  shared_buffers: "1GB",
  wal_buffers: "32MB",
  max_wal_size: "16GB",
  min_wal_size: "1GB",
  checkpoint_timeout: "30min",
};

/** CPU seconds per process group. */
export interface ClusterCpu {
  replicas: number[];
  postgres?: number;
}

/** Started listeners (and PostgreSQL); {@link close} stops all of them. */
export class Cluster {
  #pgPastCpu = 0;

  private constructor(
    readonly store: StoreKind,
    readonly replicas: Replica[],
    readonly pg: TestPostgres | undefined,
    readonly storeUrl: string | undefined,
  ) {}

  /** Start PostgreSQL (when needed) and the replicas; everything started is stopped again on failure. */
  static async start(options: ClusterOptions): Promise<Cluster> {
    if (options.store === "file" && options.replicas !== 1) {
      throw new Error(
        `the file store runs as 1 listener (each file listener is a separate store), not ${options.replicas}`,
      );
    }
    let pg: TestPostgres | undefined;
    let storeUrl = options.storeUrl;
    const replicas: Replica[] = [];
    try {
      if (options.store === "postgres" && !storeUrl) {
        pg = await startPostgres({
          durable: options.durablePostgres,
          settings: options.durablePostgres ? DURABLE_SETTINGS : undefined,
        });
        storeUrl = await pg.createDatabase("portwatch");
      }
      for (let i = 0; i < options.replicas; i++) {
        const env: Record<string, string> = { ...options.env };
        if (storeUrl) env.STORE_URL = storeUrl;
        replicas.push(new Replica({ logPath: `${options.dir}/listener-${i}.log`, env }));
      }
      // One at a time: replicas racing on the first migration is the store's concern, tested there.
      for (const r of replicas) await r.start();
    } catch (e) {
      await Promise.all(replicas.map((r) => r.stop()));
      await pg?.close();
      throw e;
    }
    return new Cluster(options.store, replicas, pg, storeUrl);
  }

  /** The replicas' base URLs. */
  get urls(): string[] {
    return this.replicas.map((r) => r.url);
  }

  /** The file store's logs (one per replica). */
  get logPaths(): string[] {
    return this.replicas.map((r) => r.options.logPath);
  }

  /** The PostgreSQL server's pid, from its postmaster.pid. */
  #pgPid(): number | undefined {
    if (!this.pg?.running) return undefined;
    try {
      return Number(Deno.readTextFileSync(`${this.pg.dir}/data/postmaster.pid`).split("\n")[0]);
    } catch {
      return undefined;
    }
  }

  /** Restart PostgreSQL (fast shutdown, start again on the same port and data). */
  async restartPostgres(): Promise<void> {
    if (!this.pg) throw new Error("no PostgreSQL was started here to restart");
    this.#pgPastCpu = await this.#pgCpu();
    await this.pg.restart();
  }

  async #pgCpu(): Promise<number> {
    const pid = this.#pgPid();
    return this.#pgPastCpu + (pid ? await treeCpuSeconds(pid).catch(() => 0) : 0);
  }

  /** CPU seconds used so far by each replica and by PostgreSQL (server and backends). */
  async cpu(): Promise<ClusterCpu> {
    return {
      replicas: await Promise.all(this.replicas.map((r) => r.cpu())),
      postgres: this.pg ? await this.#pgCpu() : undefined,
    };
  }

  /** Stop every replica and PostgreSQL. */
  async close(): Promise<void> {
    await Promise.all(this.replicas.map((r) => r.stop()));
    await this.pg?.close();
  }
}
