/**
 * The few libc functions the watcher calls through Deno FFI (`Deno.dlopen("libc.so.6")`), loaded once on first
 * use, with errno read right after a failing call. Every call runs on the JS thread (none is `nonblocking`), so
 * a thread-scoped call such as setns(2) changes the namespace of Deno's main thread only, and errno is that
 * thread's.
 * @module
 */

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "pointer", "u32"], result: "isize" },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  // open(2) is variadic; only the two named arguments are passed (fine on the x86-64 and AArch64 Linux ABIs)
  open: { parameters: ["buffer", "i32"], result: "i32" },
  setns: { parameters: ["i32", "i32"], result: "i32" },
  opendir: { parameters: ["buffer"], result: "pointer" },
  readdir64: { parameters: ["pointer"], result: "pointer" },
  closedir: { parameters: ["pointer"], result: "i32" },
  dirfd: { parameters: ["pointer"], result: "i32" },
  // the path is a pointer so that a dirent's d_name can be passed without copying it
  readlinkat: { parameters: ["i32", "pointer", "buffer", "usize"], result: "isize" },
  clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
  kill: { parameters: ["i32", "i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded functions. */
export type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** libc could not be loaded: no FFI permission (`--allow-ffi`), not Linux, or no libc.so.6 (musl). */
export class LibcUnavailableError extends Error {
  /** @param reason why, e.g. the dlopen error's message */
  constructor(reason: string, options?: ErrorOptions) {
    super(`libc.so.6 is not usable through FFI: ${reason}`, options);
    this.name = "LibcUnavailableError";
  }
}

/** Names of the errno values the watcher meets (Linux numbering). */
export const ERRNO: Readonly<Record<string, number>> = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  ENOTDIR: 20,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENAMETOOLONG: 36,
  ELOOP: 40,
  EPROTONOSUPPORT: 93,
  EOPNOTSUPP: 95,
  EAFNOSUPPORT: 97,
  ENOBUFS: 105,
};
const ERRNO_NAME = new Map(Object.entries(ERRNO).map(([k, v]) => [v, k]));

/** A libc call failed; `code` is the errno's name ("EPERM") when known. */
export class ErrnoError extends Error {
  /** The errno's name, e.g. "EPERM", or "E<number>". */
  readonly code: string;
  /**
   * @param syscall what was called, e.g. "socket(AF_NETLINK)"
   * @param errno the errno value
   * @param text strerror's text
   */
  constructor(readonly syscall: string, readonly errno: number, text: string) {
    const code = ERRNO_NAME.get(errno) ?? `E${errno}`;
    super(`${syscall} failed: ${text} (${code})`);
    this.name = "ErrnoError";
    this.code = code;
  }
}

let lib: Libc | undefined;
let errnoView: Deno.UnsafePointerView | undefined;

/** The libc functions, loaded on first call; throws {@link LibcUnavailableError}. */
export function libc(): Libc {
  if (lib) return lib;
  if (Deno.build.os !== "linux") throw new LibcUnavailableError(`this is ${Deno.build.os}, not Linux`);
  try {
    lib = Deno.dlopen("libc.so.6", SYMBOLS).symbols;
  } catch (e) {
    const why = e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied
      ? "no FFI permission (run with --allow-ffi)"
      : e instanceof Error
      ? e.message
      : String(e);
    throw new LibcUnavailableError(why, { cause: e });
  }
  return lib;
}

/** The calling thread's errno now; read it right after the call that failed. */
export function errno(): number {
  if (!errnoView) {
    const p = libc().__errno_location();
    if (p === null) return 0;
    errnoView = new Deno.UnsafePointerView(p); // errno's address is fixed for the (JS) thread
  }
  return errnoView.getInt32();
}

/** An {@link ErrnoError} for the errno the last failing call left. */
export function errnoError(syscall: string, err: number = errno()): ErrnoError {
  const p = libc().strerror(err);
  return new ErrnoError(syscall, err, p === null ? `errno ${err}` : Deno.UnsafePointerView.getCString(p));
}

const CLOCK_MONOTONIC = 1;
const timespec = new BigInt64Array(2);
const timespecBytes = new Uint8Array(timespec.buffer);

/**
 * CLOCK_MONOTONIC now, in ns: the kernel clock that BPF programs read (bpf_ktime_get_ns, bpftrace's `nsecs`),
 * so a record's age is this minus its time. Throws {@link LibcUnavailableError}.
 */
export function monotonicNs(): number {
  if (libc().clock_gettime(CLOCK_MONOTONIC, timespecBytes) !== 0) {
    throw errnoError("clock_gettime(CLOCK_MONOTONIC)");
  }
  return Number(timespec[0]) * 1e9 + Number(timespec[1]);
}

/** A NUL-terminated UTF-8 copy of `s`, for "buffer" arguments that take a C string. */
export function cstr(s: string): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(s.length * 3 + 1);
  const { written } = new TextEncoder().encodeInto(s, b);
  return b.subarray(0, written + 1);
}
