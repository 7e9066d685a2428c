import assert from "node:assert/strict";
import { ContainerMetaLookup } from "./runtime_lookup.ts";

const FIXTURES = new URL("./testing/fixtures/runtime/", import.meta.url);
const fixture = (name: string) => Deno.readTextFileSync(new URL(name, FIXTURES));

const COMPOSE = "7a3b9c1d2e4f5061728394a5b6c7d8e9f00112233445566778899aabbccddeef";
const RUN = "d548c5b83fa61d8e3bd86ad42a7ffea9b7c86e3f9d8095c1577d3e1270bb9420";
const PODMAN = "3f1a2b9c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8";
const CRI = "5c0ffee5c0ffee5c0ffee5c0ffee5c0ffee5c0ffee5c0ffee5c0ffee5c0ffee0";
const NERDCTL = "be4addd26f056028b1b5144be20da489c0d356bc1517fe70dd388524df684b3e";

/** A temporary tree: `files` maps paths relative to it to their text. */
function tree(files: Record<string, string>): { dir: string; [Symbol.dispose](): void } {
  const dir = Deno.makeTempDirSync({ prefix: "pw-runtime-" });
  for (const [rel, text] of Object.entries(files)) {
    const path = `${dir}/${rel}`;
    Deno.mkdirSync(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    Deno.writeTextFileSync(path, text);
  }
  return { dir, [Symbol.dispose]: () => Deno.removeSync(dir, { recursive: true }) };
}

Deno.test("ContainerMetaLookup: Docker's <data-root>/containers, under /host, read once per id", () => {
  using t = tree({
    [`host/var/lib/docker/containers/${COMPOSE}/config.v2.json`]: fixture(
      "docker-20.10-compose-v1.config.v2.json",
    ),
    [`host/var/lib/docker/containers/${COMPOSE}/hostname`]: "7a3b9c1d2e4f\n",
  });
  const lookup = new ContainerMetaLookup([
    `${t.dir}/var/lib/docker/containers`, // not there: skipped
    `${t.dir}/host/var/lib/docker/containers`,
  ]);
  const want = {
    id: COMPOSE,
    name: "portwatcher",
    image: "portwatch_portwatcher",
    compose_project: "portwatch",
    compose_service: "portwatcher",
  };
  assert.deepEqual(lookup.get(COMPOSE), want);
  // The file is gone (or changed): the cached answer stands, the disk is not read again.
  Deno.removeSync(`${t.dir}/host/var/lib/docker/containers/${COMPOSE}/config.v2.json`);
  assert.deepEqual(lookup.get(COMPOSE), want);
  assert.deepEqual(lookup.stats, { reads: 1, hits: 1 });
});

Deno.test("ContainerMetaLookup: a short id finds the full one; unknown and non-hex ids give null", () => {
  using t = tree({
    [`containers/${RUN}/config.v2.json`]: fixture("docker-20.10-run.config.v2.json"),
    [`containers/${COMPOSE}/config.v2.json`]: fixture("docker-20.10-compose-v1.config.v2.json"),
  });
  const lookup = new ContainerMetaLookup([`${t.dir}/containers`]);
  assert.equal(lookup.get(RUN.slice(0, 12))?.id, RUN);
  assert.equal(lookup.get(RUN.slice(0, 12))?.name, "web");
  assert.equal(lookup.get("0123456789ab"), null);
  assert.equal(lookup.get("../../etc"), null);
  assert.equal(lookup.get("web"), null);
});

Deno.test("ContainerMetaLookup: Podman: the name and image from containers.json, beside userdata/config.json", () => {
  using t = tree({
    "overlay-containers/containers.json": fixture("podman-4.3.containers.json"),
    [`overlay-containers/${PODMAN}/userdata/config.json`]: fixture("podman-4.3.userdata.config.json"),
  });
  const lookup = new ContainerMetaLookup([`${t.dir}/overlay-containers`]);
  assert.deepEqual(lookup.get(PODMAN), {
    id: PODMAN,
    name: "pw-smoke",
    image: "localhost/portwatch-base:bookworm",
    compose_project: null,
    compose_service: null,
  });
});

Deno.test("ContainerMetaLookup: containerd task bundles, in any namespace", () => {
  using t = tree({
    [`task/k8s.io/${CRI}/config.json`]: fixture("containerd-cri.config.json"),
    [`task/default/${NERDCTL}/config.json`]: fixture("containerd-nerdctl.config.json"),
    [`task/moby/${RUN}/config.json`]: '{"ociVersion":"1.0.2","annotations":{}}', // Docker's: says nothing
  });
  const lookup = new ContainerMetaLookup([`${t.dir}/task`]);
  assert.deepEqual(lookup.get(CRI), {
    id: CRI,
    name: "api",
    image: "registry.example.com/shop/api:1.4.2",
    compose_project: null,
    compose_service: null,
  });
  assert.equal(lookup.get(NERDCTL)?.name, "nginx");
  assert.deepEqual(lookup.get(RUN), {
    id: RUN, // the directory's name: the full id, nothing else
    name: null,
    image: null,
    compose_project: null,
    compose_service: null,
  });
});

Deno.test("ContainerMetaLookup: several directories are merged, the first's fields first", () => {
  using t = tree({
    [`task/moby/${RUN}/config.json`]: '{"annotations":{"nerdctl/name":"from-bundle"}}',
    [`docker/${RUN}/config.v2.json`]: fixture("docker-20.10-run.config.v2.json"),
  });
  const lookup = new ContainerMetaLookup([`${t.dir}/docker`, `${t.dir}/task`]);
  assert.equal(lookup.get(RUN)?.name, "web");
  assert.equal(new ContainerMetaLookup([`${t.dir}/task`, `${t.dir}/docker`]).get(RUN)?.name, "from-bundle");
});

Deno.test("ContainerMetaLookup: a corrupt file is skipped (the next directory still answers)", () => {
  using t = tree({
    [`a/${RUN}/config.v2.json`]: '{"ID":"trunc',
    [`b/${RUN}/config.v2.json`]: fixture("docker-20.10-run.config.v2.json"),
  });
  const lookup = new ContainerMetaLookup([`${t.dir}/a`, `${t.dir}/b`]);
  assert.equal(lookup.get(RUN)?.image, "debian:bookworm");
});

Deno.test("ContainerMetaLookup: at most maxEntries ids are remembered, the oldest forgotten first", () => {
  using t = tree({ [`c/${RUN}/config.v2.json`]: fixture("docker-20.10-run.config.v2.json") });
  const lookup = new ContainerMetaLookup([`${t.dir}/c`], { maxEntries: 2 });
  lookup.get(RUN);
  lookup.get("a".repeat(64));
  lookup.get("b".repeat(64)); // RUN is forgotten
  assert.equal(lookup.get(RUN)?.name, "web");
  assert.deepEqual(lookup.stats, { reads: 4, hits: 0 });
});
