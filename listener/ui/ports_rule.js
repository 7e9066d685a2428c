// @ts-check
/**
 * The open-port rule, written once for the listener and the live page: which ports are open now, given the
 * port events in store order. The file store's table (listener/ports_state.ts) extends {@link PortTable}; the
 * PostgreSQL store (listener/pg/rows.ts) folds a batch with {@link isPortEvent}, {@link keepsOpen} and builds
 * its entries with {@link openPort}; the page (served as /ui/ports_rule.js) keeps its table in a
 * {@link PortTable}, so what it shows after an event is what `GET /ports` answers.
 *
 * The rule, per port: one entry per (host, container_id, netns, proto, port) ({@link portKey}).
 * - `open` sets the port's entry: a new one, `since` its `observed_at` (else the listener's `ts`); when the
 *   port is open already (a repeat, a watcher that restarted), the entry is refreshed with the open's fields
 *   and keeps its `since`.
 * - `change` (the port stays open; the processes holding it or its addresses changed) refreshes the entry
 *   like an open: `pids`, `addrs`, `process`, `source` become the change's, `since` is kept. A change about a
 *   port not known to be open opens it (a change says the port is open now; its open was missed, or is in a
 *   log no longer read), `since` then the change's time.
 * - `close` removes the entry, whatever its source (`polling`, `ebpf`, `shutdown`, `shutdown-ebpf`, ...).
 * - Anything else (plain-text messages, records without a numeric port, a kind a newer watcher sends) leaves
 *   the table as it is.
 * An event applied twice in a row leaves the same table, so a stream that replays what was already read is
 * harmless.
 *
 * A plain ES module with JSDoc types and no imports: the browser loads it as it is; Deno imports and
 * type-checks it.
 * @module
 */

/**
 * One port open now, as `GET /ports` lists it.
 * @typedef {object} OpenPort
 * @property {string | null} host
 * @property {string | null} container_id
 * @property {string | null} container_name
 * @property {string | null} image The container's image as given, when the watcher read it (null for older
 *   watchers and hosts).
 * @property {string | null} compose_project Compose's project of the container, when it is a compose one.
 * @property {string | null} compose_service Compose's service of the container, when it is a compose one.
 * @property {number | null} netns
 * @property {string | null} proto
 * @property {number} port
 * @property {number | null} family
 * @property {string[]} addrs The addresses it is bound to now (after the latest open or change).
 * @property {number[]} pids The pids holding it now (after the latest open or change).
 * @property {unknown} process
 * @property {string | null} source
 * @property {PortVerdict | null} policy The port policy's verdict on its latest open or change, as stored with
 *   it (null when no policy was in force).
 * @property {string} since When it opened: the watcher's `observed_at`, else the listener's `ts`.
 * @property {string} ts Listener time of the latest event about it.
 * @property {string} event_id Id of the latest event about it.
 */

/**
 * The policy's verdict stored with an open or change (policy/match.ts: Verdict).
 * @typedef {object} PortVerdict
 * @property {"allow" | "alert"} verdict
 * @property {string | null} rule
 * @property {"info" | "warning" | "critical"} [severity]
 * @property {string} [description]
 */

/**
 * A port event as this rule reads it (a stored record: the contract's fields, perhaps fewer or more).
 * @typedef {Record<string, unknown> & { port: number, event: "open" | "close" | "change" }} PortRecord
 */

/**
 * One open port with the parts of its key as the record gave them (absent as "").
 * @typedef {object} Held
 * @property {unknown} host
 * @property {unknown} container_id
 * @property {unknown} netns
 * @property {unknown} proto
 * @property {OpenPort} open
 */

/** @param {unknown} v */
const str = (v) => (typeof v === "string" ? v : null);
/** @param {unknown} v */
const num = (v) => (typeof v === "number" ? v : null);
/**
 * @param {unknown} v
 * @returns {PortVerdict | null}
 */
const verdictOf = (v) =>
  v !== null && typeof v === "object" && "verdict" in v ? /** @type {PortVerdict} */ (v) : null;

/**
 * True when `r` is a port event: a record with a numeric `port` whose `event` is open, close or change.
 * @param {unknown} r
 * @returns {r is PortRecord}
 */
export function isPortEvent(r) {
  if (r === null || typeof r !== "object") return false;
  const { event, port } = /** @type {Record<string, unknown>} */ (r);
  return typeof port === "number" && (event === "open" || event === "close" || event === "change");
}

/**
 * True when the port is open after port event `r` (an open or a change), false after a close.
 * @param {PortRecord} r
 */
export function keepsOpen(r) {
  return r.event !== "close";
}

/**
 * The key of the port a record (or an {@link OpenPort}) is about: host, container, network namespace, proto,
 * port.
 * @param {Record<string, unknown> | OpenPort} r
 * @returns {string}
 */
export function portKey(r) {
  return `${r.host ?? ""}\u0000${r.container_id ?? ""}\u0000${r.netns ?? ""}\u0000${
    r.proto ?? ""
  }\u0000${r.port}`;
}

/**
 * A new entry for a port that open or change event `r` leaves open.
 * @param {PortRecord} r
 * @param {string} since
 * @returns {OpenPort}
 */
export function openPort(r, since) {
  return {
    host: str(r.host),
    container_id: str(r.container_id),
    container_name: str(r.container_name),
    image: str(r.image),
    compose_project: str(r.compose_project),
    compose_service: str(r.compose_service),
    netns: num(r.netns),
    proto: str(r.proto),
    port: r.port,
    family: num(r.family),
    addrs: Array.isArray(r.addrs) ? r.addrs : [],
    pids: Array.isArray(r.pids) ? r.pids : [],
    process: r.process ?? null,
    source: str(r.source),
    policy: verdictOf(r.policy),
    since,
    ts: String(r.ts),
    event_id: String(r.id),
  };
}

/**
 * When a port that `r` opens opened: the watcher's time, else the listener's.
 * @param {Record<string, unknown>} r
 */
export function sinceOf(r) {
  return str(r.observed_at) ?? String(r.ts);
}

/**
 * Refresh open entry `p` in place with open or change event `r` about the same port; `since` is kept.
 * @param {OpenPort} p
 * @param {PortRecord} r
 */
function refresh(p, r) {
  p.host = str(r.host);
  p.container_id = str(r.container_id);
  p.container_name = str(r.container_name);
  p.image = str(r.image);
  p.compose_project = str(r.compose_project);
  p.compose_service = str(r.compose_service);
  p.netns = num(r.netns);
  p.proto = str(r.proto);
  p.family = num(r.family);
  p.addrs = Array.isArray(r.addrs) ? r.addrs : [];
  p.pids = Array.isArray(r.pids) ? r.pids : [];
  p.process = r.process ?? null;
  p.source = str(r.source);
  p.policy = verdictOf(r.policy);
  p.ts = String(r.ts);
  p.event_id = String(r.id);
}

/**
 * The open-port table: by port number, then a short list of (host, container, netns, proto); an event finds
 * its entry without building a key string.
 */
export class PortTable {
  /** @type {Map<number, Held[]>} */
  #byPort = new Map();
  #size = 0;

  /**
   * Where in `held` the entry with these key parts is, or -1.
   * @param {Held[] | undefined} held
   * @param {unknown} host
   * @param {unknown} containerId
   * @param {unknown} netns
   * @param {unknown} proto
   */
  static #find(held, host, containerId, netns, proto) {
    if (!held) return -1;
    for (let i = 0; i < held.length; i++) {
      const h = held[i];
      if (h.host === host && h.container_id === containerId && h.netns === netns && h.proto === proto) {
        return i;
      }
    }
    return -1;
  }

  /**
   * Apply one stored record (see the rule above); records that are not port events are ignored.
   * @param {Record<string, unknown>} r
   * @returns {OpenPort | undefined} the port's entry when the record leaves it open
   */
  apply(r) {
    if (!isPortEvent(r)) return undefined;
    const host = r.host ?? "";
    const containerId = r.container_id ?? "";
    const netns = r.netns ?? "";
    const proto = r.proto ?? "";
    const held = this.#byPort.get(r.port);
    const at = PortTable.#find(held, host, containerId, netns, proto);
    if (!keepsOpen(r)) {
      if (held && at >= 0) {
        held.splice(at, 1);
        if (held.length === 0) this.#byPort.delete(r.port);
        this.#size--;
      }
      return undefined;
    }
    if (held && at >= 0) {
      // Refreshed in place: no new entry for a port that is already open (the common case under load).
      const open = held[at].open;
      refresh(open, r);
      return open;
    }
    const open = openPort(r, sinceOf(r));
    this.#insert(held, r.port, { host, container_id: containerId, netns, proto, open });
    return open;
  }

  /**
   * The entry of the port record `r` is about, while that port is open (the table is not changed).
   * @param {Record<string, unknown>} r
   * @returns {OpenPort | undefined}
   */
  get(r) {
    if (typeof r.port !== "number") return undefined;
    const held = this.#byPort.get(r.port);
    const at = PortTable.#find(held, r.host ?? "", r.container_id ?? "", r.netns ?? "", r.proto ?? "");
    return held && at >= 0 ? held[at].open : undefined;
  }

  /**
   * @param {Held[] | undefined} held
   * @param {number} port
   * @param {Held} entry
   */
  #insert(held, port, entry) {
    if (held) held.push(entry);
    else this.#byPort.set(port, [entry]);
    this.#size++;
  }

  /**
   * Make the table hold exactly `ports` (open ports as `GET /ports` lists them), kept as they are.
   * @param {Iterable<OpenPort>} ports
   */
  load(ports) {
    this.#byPort.clear();
    this.#size = 0;
    for (const p of ports) {
      const host = p.host ?? "";
      const containerId = p.container_id ?? "";
      const netns = p.netns ?? "";
      const proto = p.proto ?? "";
      const held = this.#byPort.get(p.port);
      const at = PortTable.#find(held, host, containerId, netns, proto);
      if (held && at >= 0) held[at].open = p;
      else this.#insert(held, p.port, { host, container_id: containerId, netns, proto, open: p });
    }
  }

  /**
   * Every open port, in no particular order.
   * @returns {Generator<OpenPort>}
   */
  *values() {
    for (const held of this.#byPort.values()) {
      for (const h of held) yield h.open;
    }
  }

  /** Number of open ports. */
  get size() {
    return this.#size;
  }
}
