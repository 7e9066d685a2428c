/**
 * Where the tests find Tracee's sample output (../shared/fixtures/tracee beside the project, as the project's
 * machines and CI have it): TRACEE_FIXTURES if set, else `shared/fixtures/tracee` in the project's parent
 * folder, else /work/shared/fixtures/tracee. One place, so every Tracee test reads the same files.
 * @module
 */
const candidates = [
  Deno.env.get("TRACEE_FIXTURES"),
  new URL("../../../../shared/fixtures/tracee/", import.meta.url).pathname,
  "/work/shared/fixtures/tracee/",
].filter((p): p is string => p !== undefined && p !== "");

function isDir(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

const found = candidates.find(isDir);
if (found === undefined) {
  throw new Error(
    `Tracee's sample output (shared/fixtures/tracee) is not at ${candidates.join(" nor ")}; ` +
      "set TRACEE_FIXTURES to its folder",
  );
}

/** The fixtures folder, ending in `/`. */
export const TRACEE_FIXTURES: string = found.endsWith("/") ? found : `${found}/`;

/** The adapter's expected events for each fixture (`<fixture>.json`), ending in `/`. */
export const TRACEE_EXPECTED: string = new URL("../expected/", import.meta.url).pathname;

/** The lines of fixture file `name`. */
export function fixtureLines(name: string): string[] {
  return Deno.readTextFileSync(TRACEE_FIXTURES + name).split("\n");
}
