/**
 * Test helper: run the deno that runs the tests as an unprivileged user (`setpriv --reuid`), however deno was
 * installed. `npx -y deno@...` runs a binary cached under /root/.npm (mode 0700), which nobody cannot execute:
 * then the binary is copied into a fresh temporary directory (0755) that `close()` removes. The user also gets
 * a home directory of its own (HOME, DENO_DIR) in that directory.
 *
 * ```ts
 * await using deno = await denoForUser();
 * await run(deno.command(["run", "--no-config", "probe.ts"]));
 * ```
 * @module
 */

/** A user and group to drop to, without supplementary groups. */
export interface UnprivilegedUser {
  uid: number;
  gid: number;
}

/** nobody:nogroup, the user the tests drop to. */
export const NOBODY: UnprivilegedUser = { uid: 65534, gid: 65534 };

/** A deno binary and a home directory an unprivileged user can use; `close()` removes what was made. */
export interface UserDeno extends AsyncDisposable {
  /** The binary the user runs: `Deno.execPath()` itself when the user can execute it, else a copy. */
  readonly path: string;
  /** Whether `path` is a copy (the original was not executable by the user). */
  readonly copied: boolean;
  /** The user's own writable home directory; DENO_DIR is `<home>/.deno`. */
  readonly home: string;
  /** The temporary directory holding the home and any copy; removed by `close()`. */
  readonly dir: string;
  /** `NAME=value` pairs for `env`: HOME, DENO_DIR, DENO_NO_UPDATE_CHECK. */
  readonly env: string[];
  /**
   * The argv that runs `deno <args>` as the user: `setpriv ... env ... <path> <args>`. Keep env(1) (or another
   * program) between setpriv and deno: setpriv execs with root's capabilities, which hides a path problem.
   */
  command(args: string[]): string[];
  /** Remove the temporary directory (the home and any copy). Safe to call twice. */
  close(): Promise<void>;
}

/**
 * Whether `user` (with no supplementary groups) may, by the modes stat(2) reports, search every directory
 * down to `path` and read and execute `path`. ACLs and noexec mounts are not seen: {@link runsAs} is the proof.
 */
export function modesAllowExec(path: string, user: UnprivilegedUser = NOBODY): boolean {
  if (user.uid === 0) return true;
  const allowed = (info: Deno.FileInfo, bits: number) => {
    const mode = info.mode ?? 0;
    const shift = info.uid === user.uid ? 6 : info.gid === user.gid ? 3 : 0;
    return ((mode >> shift) & bits) === bits;
  };
  try {
    const parts = Deno.realPathSync(path).split("/").filter(Boolean);
    for (let i = 0; i < parts.length; i++) {
      const dir = "/" + parts.slice(0, i).join("/");
      if (!allowed(Deno.statSync(dir), 0o1)) return false;
    }
    return allowed(Deno.statSync(path), 0o5);
  } catch {
    return false;
  }
}

/** The `setpriv` argv prefix that drops to `user` with no supplementary groups. */
export function setprivArgs(user: UnprivilegedUser = NOBODY): string[] {
  return ["setpriv", `--reuid=${user.uid}`, `--regid=${user.gid}`, "--clear-groups"];
}

/**
 * Whether `user` can run `deno --version` from `path` (10 s deadline): undefined when it can, else why not.
 * Runs `setpriv ... env <path>`, as {@link UserDeno.command} does: setpriv execs with root's capabilities
 * still in effect, so `setpriv ... <path>` would run even a binary the user cannot reach.
 */
export async function runsAs(path: string, user: UnprivilegedUser = NOBODY): Promise<string | undefined> {
  const [cmd, ...args] = setprivArgs(user);
  try {
    const out = await new Deno.Command(cmd, {
      // through env(1): setpriv itself still holds root's capabilities (KEEPCAPS) when it execs its command
      args: [...args, "env", path, "--version"],
      env: { DENO_NO_UPDATE_CHECK: "1" },
      stdin: "null",
      stdout: "null",
      stderr: "piped",
      signal: AbortSignal.timeout(10_000),
    }).output();
    if (out.success) return undefined;
    const stderr = new TextDecoder().decode(out.stderr).trim();
    return `exit ${out.code}${out.signal ? ` (${out.signal})` : ""}: ${stderr}`;
  } catch (e) {
    return String(e);
  }
}

/**
 * A deno `user` can execute, and a home for it. When `execPath` (default: the running deno) is not executable
 * by `user`, it is copied to `<fresh temp dir>/bin/deno` (dirs and file 0755). Needs root and util-linux's
 * `setpriv`. Throws, after cleaning up, when even the copy does not run as `user` (e.g. a noexec TMPDIR).
 */
export async function denoForUser(
  { user = NOBODY, execPath = Deno.execPath() }: { user?: UnprivilegedUser; execPath?: string } = {},
): Promise<UserDeno> {
  const dir = await Deno.makeTempDir({ prefix: "pwtest-user-deno-" });
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await Deno.remove(dir, { recursive: true }).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
  };
  try {
    await Deno.chmod(dir, 0o755);
    const home = `${dir}/home`;
    await Deno.mkdir(home, { mode: 0o700 });
    await Deno.chown(home, user.uid, user.gid);
    let path = execPath;
    let copied = false;
    if (!modesAllowExec(path, user) || (await runsAs(path, user)) !== undefined) {
      await Deno.mkdir(`${dir}/bin`, { mode: 0o755 });
      path = `${dir}/bin/deno`;
      await Deno.copyFile(execPath, path);
      await Deno.chmod(path, 0o755);
      copied = true;
      const why = await runsAs(path, user);
      if (why !== undefined) {
        throw new Error(
          `uid ${user.uid} cannot run deno even copied to ${path} (${why}); set TMPDIR elsewhere`,
        );
      }
    }
    const env = [`HOME=${home}`, `DENO_DIR=${home}/.deno`, "DENO_NO_UPDATE_CHECK=1"];
    return {
      path,
      copied,
      home,
      dir,
      env,
      command: (args) => [...setprivArgs(user), "env", ...env, path, ...args],
      close,
      [Symbol.asyncDispose]: close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}
