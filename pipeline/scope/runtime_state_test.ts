import assert from "node:assert/strict";
import {
  type ContainerMeta,
  isEmptyMeta,
  mergeMeta,
  metaFromAnnotations,
  NO_META,
  parseDockerConfigV2,
  parseOciBundleConfig,
  parseStorageContainers,
} from "./runtime_state.ts";

const FIXTURES = new URL("./testing/fixtures/runtime/", import.meta.url);
const fixture = (name: string) => Deno.readTextFileSync(new URL(name, FIXTURES));

Deno.test("parseDockerConfigV2: a compose v1 container: name without '/', image as built, project, service", () => {
  assert.deepEqual(parseDockerConfigV2(fixture("docker-20.10-compose-v1.config.v2.json")), {
    id: "7a3b9c1d2e4f5061728394a5b6c7d8e9f00112233445566778899aabbccddeef",
    name: "portwatcher",
    image: "portwatch_portwatcher",
    compose_project: "portwatch",
    compose_service: "portwatcher",
  });
});

Deno.test("parseDockerConfigV2: a plain docker run: name and image, no compose labels", () => {
  assert.deepEqual(parseDockerConfigV2(fixture("docker-20.10-run.config.v2.json")), {
    id: "d548c5b83fa61d8e3bd86ad42a7ffea9b7c86e3f9d8095c1577d3e1270bb9420",
    name: "web",
    image: "debian:bookworm",
    compose_project: null,
    compose_service: null,
  });
});

Deno.test("parseDockerConfigV2: missing or odd fields give null; an image given by digest is not a name", () => {
  const digest = "sha256:" + "a".repeat(64);
  assert.deepEqual(
    parseDockerConfigV2(JSON.stringify({ Name: "/", Config: { Image: digest, Labels: { x: 1 } } })),
    NO_META,
  );
  assert.deepEqual(parseDockerConfigV2("{}"), NO_META);
  assert.equal(parseDockerConfigV2(JSON.stringify({ Config: { Image: "b".repeat(64) } })).image, null);
});

Deno.test("parseDockerConfigV2: not JSON, or not an object, is an error naming the file", () => {
  assert.throws(() => parseDockerConfigV2('{"ID":'), /config\.v2\.json is not JSON/);
  assert.throws(() => parseDockerConfigV2("[1]"), /config\.v2\.json is not a JSON object/);
});

Deno.test("parseOciBundleConfig: nerdctl's bundle names the container (no image, no compose labels there)", () => {
  assert.deepEqual(parseOciBundleConfig(fixture("containerd-nerdctl.config.json")), {
    ...NO_META,
    name: "nginx",
  });
});

Deno.test("parseOciBundleConfig: containerd's CRI bundle: container name and image", () => {
  assert.deepEqual(parseOciBundleConfig(fixture("containerd-cri.config.json")), {
    ...NO_META,
    name: "api",
    image: "registry.example.com/shop/api:1.4.2",
  });
});

Deno.test("parseOciBundleConfig: Podman's annotations say nothing about name or image", () => {
  const meta = parseOciBundleConfig(fixture("podman-4.3.userdata.config.json"));
  assert.ok(isEmptyMeta(meta), JSON.stringify(meta));
  assert.throws(() => parseOciBundleConfig("null"), /config\.json is not a JSON object/);
  assert.throws(() => parseOciBundleConfig("nope"), /config\.json is not JSON/);
});

Deno.test("metaFromAnnotations: CRI-O's keys, and compose labels copied into annotations", () => {
  assert.deepEqual(
    metaFromAnnotations({
      "io.kubernetes.container.name": "db",
      "io.kubernetes.cri-o.ImageName": "docker.io/library/postgres:16",
      "com.docker.compose.project": "shop",
      "com.docker.compose.service": "db",
    }),
    {
      id: null,
      name: "db",
      image: "docker.io/library/postgres:16",
      compose_project: "shop",
      compose_service: "db",
    },
  );
  assert.equal(
    metaFromAnnotations({ "nerdctl/name": "", "io.kubernetes.cri.container-name": "x" }).name,
    "x",
  );
});

Deno.test("parseStorageContainers: Podman's containers.json gives the name and the image as given", () => {
  const all = parseStorageContainers(fixture("podman-4.3.containers.json"));
  const id = "3f1a2b9c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8";
  assert.deepEqual([...all.keys()], [id]);
  assert.deepEqual(all.get(id), {
    id,
    name: "pw-smoke",
    image: "localhost/portwatch-base:bookworm",
    compose_project: null,
    compose_service: null,
  });
});

Deno.test("parseStorageContainers: metadata that is not JSON falls back to names; bad lists are errors", () => {
  const all = parseStorageContainers(
    JSON.stringify([
      { id: "abc", names: ["buildah-working"], metadata: "not json" },
      { names: ["no id"] },
      7,
    ]),
  );
  assert.deepEqual(all.get("abc"), { ...NO_META, id: "abc", name: "buildah-working" });
  assert.equal(all.size, 1);
  assert.throws(() => parseStorageContainers("{}"), /containers\.json is not a JSON array/);
});

Deno.test("mergeMeta: the first one's fields win, the second fills the gaps", () => {
  const a: ContainerMeta = { ...NO_META, name: "web" };
  const b: ContainerMeta = { ...NO_META, name: "other", image: "nginx" };
  assert.deepEqual(mergeMeta(a, b), { ...NO_META, name: "web", image: "nginx" });
  assert.ok(isEmptyMeta(mergeMeta(NO_META, NO_META)));
});
