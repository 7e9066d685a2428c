/**
 * The few libbpf functions the native engine calls, through Deno FFI (`Deno.dlopen("libbpf.so.1")`, Debian's
 * libbpf1): open an object, size its ring, load it, attach its programs, and read and write its maps. libbpf
 * 1.x returns NULL or a negative errno and sets errno on failure; errno is read right after the call (every
 * call runs on the JS thread).
 * @module
 */
import { cstr, errno, errnoError } from "../../infra/libc.ts";

const SYMBOLS = {
  libbpf_set_print: { parameters: ["pointer"], result: "pointer" },
  bpf_object__open_file: { parameters: ["buffer", "pointer"], result: "pointer" },
  bpf_object__find_map_by_name: { parameters: ["pointer", "buffer"], result: "pointer" },
  bpf_map__set_max_entries: { parameters: ["pointer", "u32"], result: "i32" },
  bpf_map__fd: { parameters: ["pointer"], result: "i32" },
  bpf_object__load: { parameters: ["pointer"], result: "i32" },
  bpf_object__next_program: { parameters: ["pointer", "pointer"], result: "pointer" },
  bpf_program__name: { parameters: ["pointer"], result: "pointer" },
  bpf_program__attach: { parameters: ["pointer"], result: "pointer" },
  bpf_link__destroy: { parameters: ["pointer"], result: "i32" },
  bpf_object__close: { parameters: ["pointer"], result: "void" },
  bpf_map_update_elem: { parameters: ["i32", "buffer", "buffer", "u64"], result: "i32" },
  bpf_map_lookup_elem: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  bpf_map_delete_elem: { parameters: ["i32", "buffer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

type Libbpf = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let lib: Libbpf | undefined;

/** libbpf's functions, loaded on first use; throws an Error saying why it cannot be loaded. */
export function libbpf(): Libbpf {
  if (lib) return lib;
  try {
    lib = Deno.dlopen("libbpf.so.1", SYMBOLS).symbols;
  } catch (e) {
    const why = e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied
      ? "no FFI permission (run with --allow-ffi)"
      : "libbpf.so.1 is not installed (Debian: apt-get install libbpf1)";
    throw new Error(why, { cause: e });
  }
  // libbpf's own messages (its verifier logs) stay quiet unless EBPF_LIBBPF_LOG is set: the engine says
  // what failed itself, and `auto` trying the engine must not fill a terminal when it cannot load.
  if (!Deno.env.get("EBPF_LIBBPF_LOG")) lib.libbpf_set_print(null);
  return lib;
}

/** A libbpf call's negative return as an errno error (libbpf returns -errno). */
function check(what: string, ret: number): void {
  if (ret < 0) throw errnoError(what, -ret);
}

/** A map of a loaded object. */
export class BpfMap {
  constructor(readonly name: string, readonly fd: number) {}

  /** Write `value` at `key` (BPF_ANY). */
  update(key: Uint8Array<ArrayBuffer>, value: Uint8Array<ArrayBuffer>): void {
    check(`bpf_map_update_elem(${this.name})`, libbpf().bpf_map_update_elem(this.fd, key, value, 0n));
  }

  /** Read the value at `key` into `value`; false when there is none. */
  lookup(key: Uint8Array<ArrayBuffer>, value: Uint8Array<ArrayBuffer>): boolean {
    const ret = libbpf().bpf_map_lookup_elem(this.fd, key, value);
    if (ret === 0) return true;
    if (-ret === 2 || errno() === 2) return false; // ENOENT
    throw errnoError(`bpf_map_lookup_elem(${this.name})`, -ret);
  }

  /** Delete the value at `key`; false when there was none. */
  delete(key: Uint8Array<ArrayBuffer>): boolean {
    const ret = libbpf().bpf_map_delete_elem(this.fd, key);
    if (ret === 0) return true;
    if (-ret === 2) return false;
    throw errnoError(`bpf_map_delete_elem(${this.name})`, -ret);
  }
}

/** An opened BPF object file: size maps, load, attach, close. */
export class BpfObject {
  #obj: Deno.PointerObject;
  #links: Deno.PointerObject[] = [];
  #closed = false;

  private constructor(obj: Deno.PointerObject) {
    this.#obj = obj;
  }

  /** Open (parse) an object file; nothing is loaded into the kernel yet. */
  static open(path: string): BpfObject {
    const obj = libbpf().bpf_object__open_file(cstr(path), null);
    if (obj === null) throw errnoError(`bpf_object__open_file(${path})`);
    return new BpfObject(obj);
  }

  #map(name: string): Deno.PointerObject {
    const map = libbpf().bpf_object__find_map_by_name(this.#obj, cstr(name));
    if (map === null) throw new Error(`the BPF object has no map named ${name}`);
    return map;
  }

  /** Set a map's size (before load). */
  setMaxEntries(name: string, entries: number): void {
    check(
      `bpf_map__set_max_entries(${name}, ${entries})`,
      libbpf().bpf_map__set_max_entries(this.#map(name), entries),
    );
  }

  /** Verify and load every program and create every map. */
  load(): void {
    check("bpf_object__load", libbpf().bpf_object__load(this.#obj));
  }

  /** A loaded map. */
  map(name: string): BpfMap {
    return new BpfMap(name, libbpf().bpf_map__fd(this.#map(name)));
  }

  /** Attach every program (by its SEC name); returns their names in order. */
  attachAll(): string[] {
    const names: string[] = [];
    for (
      let prog = libbpf().bpf_object__next_program(this.#obj, null);
      prog !== null;
      prog = libbpf().bpf_object__next_program(this.#obj, prog)
    ) {
      const name = Deno.UnsafePointerView.getCString(libbpf().bpf_program__name(prog)!);
      const link = libbpf().bpf_program__attach(prog);
      if (link === null) throw errnoError(`bpf_program__attach(${name})`);
      this.#links.push(link);
      names.push(name);
    }
    return names;
  }

  /** Detach every program and free the object (its maps go with their last fd). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const link of this.#links) libbpf().bpf_link__destroy(link);
    this.#links = [];
    libbpf().bpf_object__close(this.#obj);
  }
}
