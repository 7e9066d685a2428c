/**
 * Replace a file's contents atomically: write a temporary file beside it, fsync it, rename it over the file,
 * fsync the directory. A crash leaves the old contents or the new ones, never a mix.
 *
 * @example
 * ```ts
 * await writeFileAtomic("/var/lib/portwatch/baselines.json", JSON.stringify(data));
 * ```
 * @module
 */
import { dirname } from "node:path";

/** Write `text` to `path` atomically (and durably unless `fsync` is false); creates the directory. */
export async function writeFileAtomic(path: string, text: string, fsync = true): Promise<void> {
  const dir = dirname(path);
  await Deno.mkdir(dir, { recursive: true });
  const tmp = `${path}.tmp-${Deno.pid}`;
  try {
    {
      using f = await Deno.open(tmp, { write: true, create: true, truncate: true });
      const bytes = new TextEncoder().encode(text);
      let off = 0;
      while (off < bytes.length) off += await f.write(bytes.subarray(off));
      if (fsync) await f.sync();
    }
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  if (!fsync) return;
  try {
    using d = await Deno.open(dir, { read: true });
    await d.sync();
  } catch {
    // some filesystems cannot fsync a directory; the rename is still atomic
  }
}
