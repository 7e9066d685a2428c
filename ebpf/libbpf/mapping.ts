/**
 * The libc calls the native engine's ring reader needs beyond infra/libc.ts: mmap/munmap of the ring's pages,
 * and a wait for its fd that does not block the JS thread (poll(2) as a non-blocking FFI call, on a thread of
 * Deno's pool) that an eventfd can end at stop.
 * @module
 */
import { errnoError } from "../../infra/libc.ts";

const SYMBOLS = {
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  getpagesize: { parameters: [], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

let lib: Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] | undefined;
function sys() {
  return lib ??= Deno.dlopen("libc.so.6", SYMBOLS).symbols;
}

const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_SHARED = 1;
/** (void *)-1 */
const MAP_FAILED = 0xffffffffffffffffn;
const EFD_NONBLOCK = 0o4000;
const EFD_CLOEXEC = 0o2000000;
const POLLIN = 1;

/** The page size. */
export function pageSize(): number {
  return sys().getpagesize();
}

/** A shared mapping of `length` bytes of `fd` at `offset`. */
export class Mapping {
  #ptr: Deno.PointerObject | null;

  constructor(fd: number, length: number, offset: number, writable: boolean) {
    const prot = PROT_READ | (writable ? PROT_WRITE : 0);
    const ptr = sys().mmap(null, BigInt(length), prot, MAP_SHARED, fd, BigInt(offset));
    if (ptr === null || BigInt(Deno.UnsafePointer.value(ptr)) === MAP_FAILED) {
      throw errnoError(`mmap(fd ${fd}, ${length} bytes at ${offset})`);
    }
    this.#ptr = ptr;
    this.length = length;
  }
  readonly length: number;

  /** `length` bytes of the mapping from `offset`, as an ArrayBuffer over the mapped memory (no copy). */
  bytes(offset = 0, length = this.length - offset): ArrayBuffer {
    if (this.#ptr === null) throw new Error("the mapping is closed");
    return Deno.UnsafePointerView.getArrayBuffer(this.#ptr, length, offset);
  }

  /** Unmap; the buffers from bytes() must not be used after this. */
  close(): void {
    if (this.#ptr === null) return;
    sys().munmap(this.#ptr, BigInt(this.length));
    this.#ptr = null;
  }
}

/** Waits, off the JS thread, until a ring's fd has data or {@link FdWaiter.wake} is called. */
export class FdWaiter {
  readonly #event: number;
  readonly #fds = new Uint8Array(16);
  readonly #one = new Uint8Array(new BigUint64Array([1n]).buffer);
  #closed = false;

  constructor(fd: number) {
    this.#event = sys().eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (this.#event < 0) throw errnoError("eventfd");
    const v = new DataView(this.#fds.buffer);
    v.setInt32(0, fd, true);
    v.setInt16(4, POLLIN, true);
    v.setInt32(8, this.#event, true);
    v.setInt16(12, POLLIN, true);
  }

  /** Resolves when the fd is readable (true) or wake() was called (false). */
  async wait(): Promise<boolean> {
    if (this.#closed) return false;
    const v = new DataView(this.#fds.buffer);
    v.setInt16(6, 0, true);
    v.setInt16(14, 0, true);
    const n = await sys().poll(this.#fds, 2n, -1);
    if (n < 0) return !this.#closed; // EINTR: the caller waits again
    return (v.getInt16(14, true) & POLLIN) === 0 && !this.#closed;
  }

  /** End the wait under way (and every later one). */
  wake(): void {
    if (this.#closed) return;
    this.#closed = true;
    sys().write(this.#event, this.#one, 8n);
  }

  /** Close the eventfd (after the last wait has returned). */
  close(): void {
    sys().close(this.#event);
  }
}
