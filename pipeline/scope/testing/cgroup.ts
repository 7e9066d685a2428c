/** Test helper: throw-away cgroup v2 directories, so container attribution is tested on real cgroups. */
import { cgroup2Root } from "../cgroup.ts";
import { netnsSkipReason } from "../../../testing/netns.ts";
import { waitUntil } from "../../../infra/wait.ts";

/** The cgroup v2 mount, or null. */
export const cgroupRoot: string | null = cgroup2Root();

/** Why a test cgroup cannot be made here, or undefined. */
export function cgroupSkipReason(): string | undefined {
  if (Deno.build.os !== "linux") return `cgroups need Linux, this is ${Deno.build.os}`;
  if (Deno.uid() !== 0) return `not root (uid ${Deno.uid()}): making cgroups needs it`;
  if (cgroupRoot === null) return "no cgroup v2 hierarchy is mounted";
  try {
    Deno.statSync(`${cgroupRoot}/cgroup.procs`);
  } catch (e) {
    return `cannot use ${cgroupRoot}: ${e instanceof Error ? e.message : e}`;
  }
  return undefined;
}

/** Why tests needing network namespaces and a writable cgroup v2 tree cannot run, or undefined. */
export function netnsCgroupSkipReason(): string | undefined {
  return netnsSkipReason() ?? cgroupSkipReason();
}

/** A test-made cgroup /portwatch-test-<rand>/<leaf> under the v2 mount; remove() once its processes are gone. */
export function makeTestCgroup(leaf: string) {
  const top = `/portwatch-test-${crypto.randomUUID().slice(0, 8)}`;
  const path = `${top}/${leaf}`;
  Deno.mkdirSync(`${cgroupRoot}${path}`, { recursive: true });
  return {
    path,
    /** The test's top directory (relative to the v2 mount), removed with the cgroup. */
    top,
    /** The cgroup.procs file: writing a pid there moves that process in. */
    procs: `${cgroupRoot}${path}/cgroup.procs`,
    /** Move `pid` into the cgroup. */
    add(pid: number) {
      Deno.writeTextFileSync(`${cgroupRoot}${path}/cgroup.procs`, `${pid}\n`);
    },
    /** Remove the directories (waits while the last process is reaped). */
    async remove() {
      for (const p of [path, top]) {
        await waitUntil(
          `rmdir ${cgroupRoot}${p}`,
          () => {
            try {
              Deno.removeSync(`${cgroupRoot}${p}`);
              return true;
            } catch (e) {
              return e instanceof Deno.errors.NotFound; // EBUSY until the last process is reaped
            }
          },
          5_000,
          10,
        );
      }
    },
  };
}

/** `bytes` random bytes as hex. */
export const randomHex = (bytes: number): string =>
  Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
