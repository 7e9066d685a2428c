/**
 * The file store's learned baselines: one JSON file beside the log (`baselines.json`), replaced atomically at
 * each change. Baselines change rarely (a new port while a scope learns, a reset), so the whole file is
 * written each time; writes are serialised.
 * @module
 */
import { type BaselineData, Baselines, type BaselineScope } from "../../policy/baseline.ts";
import { writeFileAtomic } from "../../infra/atomic_write.ts";
import type { BaselineStore } from "../store_api.ts";

/** The file's contents. */
interface BaselineFile extends BaselineData {
  version: 1;
}

/** Baselines kept in one JSON file. */
export class FileBaselines implements BaselineStore {
  readonly shared = false;
  #data: Baselines | undefined;
  #chain: Promise<unknown> = Promise.resolve();

  constructor(readonly path: string, readonly fsync = true) {}

  async #read(): Promise<Baselines> {
    if (this.#data) return this.#data;
    let text: string;
    try {
      text = await Deno.readTextFile(this.path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      return this.#data = new Baselines();
    }
    let file: BaselineFile;
    try {
      file = JSON.parse(text);
      if (file.version !== 1 || !Array.isArray(file.scopes) || !Array.isArray(file.ports)) {
        throw new Error("not version 1");
      }
    } catch (e) {
      throw new Error(
        `${this.path} is not a baselines file (${
          (e as Error).message
        }); move it away to start learning again`,
      );
    }
    return this.#data = new Baselines(file);
  }

  /** Run `fn` after every earlier call: one writer at a time. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(fn, fn);
    this.#chain = run.catch(() => {});
    return run;
  }

  async #write(b: Baselines): Promise<void> {
    const file: BaselineFile = { version: 1, ...b.data() };
    await writeFileAtomic(this.path, JSON.stringify(file) + "\n", this.fsync);
  }

  load(): Promise<BaselineData> {
    return this.#serial(async () => (await this.#read()).data());
  }

  add(data: BaselineData): Promise<BaselineScope[]> {
    return this.#serial(async () => {
      const b = await this.#read();
      b.merge(data);
      await this.#write(b);
      const keys = new Set(data.scopes.map((s) => s.key));
      return b.data().scopes.filter((s) => keys.has(s.key));
    });
  }

  reset(keys?: readonly string[]): Promise<string[]> {
    return this.#serial(async () => {
      const b = await this.#read();
      const gone = b.reset(keys);
      if (gone.length > 0) await this.#write(b);
      return gone;
    });
  }
}
