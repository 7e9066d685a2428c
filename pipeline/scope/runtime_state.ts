/**
 * What a container runtime's own state on disk says about a container, as `docker ps` shows it: its name, the
 * image as the user gave it, and for compose containers the project and service. Pure parsers of the files the
 * runtimes write (the reading is in ./runtime_lookup.ts):
 *
 * - Docker (moby, 17.x to 2x.x): `<data-root>/containers/<id>/config.v2.json`, written by the daemon
 *   (`container.toDisk`): `Name` ("/portwatcher"), `Config.Image` ("portwatch_portwatcher", "debian:bookworm"),
 *   `Config.Labels` (compose's `com.docker.compose.project` / `com.docker.compose.service`).
 * - OCI bundles: containerd's task `config.json` (`/run/containerd/io.containerd.runtime.v2.task/<ns>/<id>/`),
 *   Podman's and CRI-O's `overlay-containers/<id>/userdata/config.json`: only the spec's `annotations` say
 *   anything: nerdctl's `nerdctl/name`, CRI's `io.kubernetes.cri.container-name` / `io.kubernetes.cri.image-name`,
 *   CRI-O's and kubelet's `io.kubernetes.container.name` / `io.kubernetes.cri-o.ImageName`, and compose labels
 *   when a tool copies them there. nerdctl writes its internal labels there (`nerdctl/name`, `nerdctl/hostname`,
 *   `nerdctl/networks`, ...) but neither the image nor user labels (compose's): those are in containerd's
 *   metadata database only. Podman puts neither the name nor the image in its annotations (only
 *   `io.container.manager`, `io.podman.annotations.*`, ...).
 * - containers/storage (Podman, CRI-O, Buildah): `overlay-containers/containers.json`, a list of
 *   `{id, names, image, metadata}` where `metadata` is a JSON text with `name` and `image-name` (Podman's
 *   `RuntimeContainerMetadata`, CRI-O's `RuntimeContainerMetadata` with `pod-name` too). That is where Podman
 *   keeps the name and image outside its database; compose labels live only in its database.
 * @module
 */

/** What the runtime's state says about one container; null where it says nothing. */
export interface ContainerMeta {
  /** The container's full id, when the file gives it. */
  id: string | null;
  /** The name `docker ps` (`podman ps`, `nerdctl ps`, `crictl ps`) shows, without Docker's leading "/". */
  name: string | null;
  /** The image as the user gave it ("debian:bookworm", "portwatch_portwatcher"), not its digest. */
  image: string | null;
  /** Compose's project (label `com.docker.compose.project`). */
  compose_project: string | null;
  /** Compose's service (label `com.docker.compose.service`). */
  compose_service: string | null;
}

/** A meta with nothing known. */
export const NO_META: Readonly<ContainerMeta> = Object.freeze({
  id: null,
  name: null,
  image: null,
  compose_project: null,
  compose_service: null,
});

const COMPOSE_PROJECT = "com.docker.compose.project";
const COMPOSE_SERVICE = "com.docker.compose.service";

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** A non-empty string, trimmed of nothing; anything else is null. */
const text = (v: unknown): string | null => (typeof v === "string" && v !== "" ? v : null);

/** The string values of a labels object (other values are skipped). */
function stringMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isObj(v)) return out;
  for (const [k, x] of Object.entries(v)) if (typeof x === "string") out[k] = x;
  return out;
}

/** An image reference that is only a content id ("sha256:..." or 64 hex) says nothing a user gave. */
function userImage(v: unknown): string | null {
  const s = text(v);
  if (s === null || /^(?:sha256:)?[0-9a-f]{64}$/.test(s)) return null;
  return s;
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${what} is not JSON: ${(e as Error).message}`);
  }
}

/**
 * The meta in a Docker `config.v2.json` text. Throws an Error naming the problem when the text is not JSON or
 * not an object.
 * @example
 * ```ts
 * const meta = parseDockerConfigV2('{"ID":"ab12","Name":"/web","Config":{"Image":"nginx:1.25","Labels":{}}}');
 * // meta.name === "web", meta.image === "nginx:1.25"
 * ```
 */
export function parseDockerConfigV2(json: string): ContainerMeta {
  const o = parseJson(json, "config.v2.json");
  if (!isObj(o)) throw new Error("config.v2.json is not a JSON object");
  const config = isObj(o.Config) ? o.Config : {};
  const labels = stringMap(config.Labels);
  const name = text(o.Name);
  return {
    id: text(o.ID),
    name: name === null ? null : name.replace(/^\//, "") || null,
    image: userImage(config.Image),
    compose_project: text(labels[COMPOSE_PROJECT]),
    compose_service: text(labels[COMPOSE_SERVICE]),
  };
}

/** Annotations naming the container, most telling first. */
const NAME_ANNOTATIONS = [
  "nerdctl/name",
  "io.kubernetes.cri.container-name", // containerd's CRI plugin
  "io.kubernetes.container.name", // CRI-O (and kubelet's labels)
];
/** Annotations naming the image as given. */
const IMAGE_ANNOTATIONS = [
  "io.kubernetes.cri.image-name", // containerd's CRI plugin
  "io.kubernetes.cri-o.ImageName", // CRI-O
];

/**
 * The meta in an OCI spec's annotations (containerd/nerdctl, CRI, CRI-O); compose labels only when a tool copied
 * them into the annotations (nerdctl keeps user labels in containerd's metadata, not in the bundle).
 * @example
 * ```ts
 * const meta = metaFromAnnotations({ "io.kubernetes.cri.container-name": "api", "io.kubernetes.cri.image-name": "registry/api:1" });
 * // meta.name === "api", meta.image === "registry/api:1"
 * ```
 */
export function metaFromAnnotations(annotations: Record<string, string>): ContainerMeta {
  const first = (keys: string[]) => {
    for (const k of keys) {
      const v = text(annotations[k]);
      if (v !== null) return v;
    }
    return null;
  };
  return {
    id: null,
    name: first(NAME_ANNOTATIONS),
    image: userImage(first(IMAGE_ANNOTATIONS)),
    compose_project: text(annotations[COMPOSE_PROJECT]),
    compose_service: text(annotations[COMPOSE_SERVICE]),
  };
}

/**
 * The meta in an OCI bundle's `config.json` text (its `annotations`; an id is not in it). Throws an Error naming
 * the problem when the text is not a JSON object.
 * @example
 * ```ts
 * const meta = parseOciBundleConfig('{"ociVersion":"1.0.2","annotations":{"nerdctl/name":"web"}}');
 * // meta.name === "web"
 * ```
 */
export function parseOciBundleConfig(json: string): ContainerMeta {
  const o = parseJson(json, "config.json");
  if (!isObj(o)) throw new Error("config.json is not a JSON object");
  return metaFromAnnotations(stringMap(o.annotations));
}

/**
 * The containers in a containers/storage `containers.json` text (Podman, CRI-O), by full id: name from
 * `metadata.name` (else the first of `names`), image from `metadata.image-name`. Entries without an id are
 * skipped; throws an Error when the text is not a JSON array.
 * @example
 * ```ts
 * const all = parseStorageContainers('[{"id":"ab12","names":["web"],"metadata":"{\\"image-name\\":\\"docker.io/library/nginx:latest\\"}"}]');
 * // all.get("ab12")?.name === "web"
 * ```
 */
export function parseStorageContainers(json: string): Map<string, ContainerMeta> {
  const list = parseJson(json, "containers.json");
  if (!Array.isArray(list)) throw new Error("containers.json is not a JSON array");
  const out = new Map<string, ContainerMeta>();
  for (const c of list) {
    if (!isObj(c) || text(c.id) === null) continue;
    let md: Record<string, unknown> = {};
    if (typeof c.metadata === "string") {
      try {
        const parsed = JSON.parse(c.metadata);
        if (isObj(parsed)) md = parsed;
      } catch {
        // metadata of another tool: not JSON
      }
    }
    const names = Array.isArray(c.names) ? c.names.filter((n): n is string => typeof n === "string") : [];
    out.set(c.id as string, {
      id: c.id as string,
      name: text(md.name) ?? text(names[0]),
      image: userImage(md["image-name"]),
      compose_project: null,
      compose_service: null,
    });
  }
  return out;
}

/** `a` completed by `b`: each field of `a` that is null takes `b`'s. */
export function mergeMeta(a: ContainerMeta, b: ContainerMeta): ContainerMeta {
  return {
    id: a.id ?? b.id,
    name: a.name ?? b.name,
    image: a.image ?? b.image,
    compose_project: a.compose_project ?? b.compose_project,
    compose_service: a.compose_service ?? b.compose_service,
  };
}

/** True when the meta says nothing. */
export function isEmptyMeta(m: ContainerMeta): boolean {
  return m.id === null && m.name === null && m.image === null && m.compose_project === null &&
    m.compose_service === null;
}
