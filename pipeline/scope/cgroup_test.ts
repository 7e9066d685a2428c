import assert from "node:assert/strict";
import {
  cgroup2MountIn,
  cgroup2Root,
  cgroupIdOf,
  CgroupIndex,
  cgroupPathOf,
  cgroupV2PathIn,
  containerFromCgroup,
  containerFromCgroupPath,
  containerFromMountinfo,
  containerOf,
  containerOfPid,
  type ContainerRef,
  parseCgroupFile,
  parseMountInfo,
} from "./cgroup.ts";
import { skipIf } from "../../testing/netns.ts";
import { cgroupSkipReason, makeTestCgroup } from "./testing/cgroup.ts";

const FIXTURES = new URL("./testing/fixtures/cgroup/", import.meta.url);
const fixture = (name: string) => Deno.readTextFileSync(new URL(name, FIXTURES));
const expected = JSON.parse(fixture("expected.json")) as Record<string, ContainerRef | null>;
const D = "d548c5b83fa61d8e3bd86ad42a7ffea9b7c86e3f9d8095c1577d3e1270bb9420";

Deno.test("fixtures: every sample file has an expectation and every expectation a file", () => {
  const files = [...Deno.readDirSync(FIXTURES)].map((e) => e.name)
    .filter((n) => n.endsWith(".cgroup") || n.endsWith(".mountinfo")).sort();
  assert.deepEqual(files, Object.keys(expected).sort());
  assert.ok(files.length >= 40);
});

for (const [file, want] of Object.entries(expected)) {
  const fn = file.endsWith(".cgroup") ? containerFromCgroup : containerFromMountinfo;
  Deno.test(`${fn.name}: ${file} -> ${want === null ? "null" : `${want.runtime} ${want.id.slice(0, 12)}`}`, () => {
    assert.deepEqual(fn(fixture(file)), want);
  });
}

Deno.test("containerFromCgroupPath: innermost container, pod uid only when the container is directly in the pod", () => {
  const inner = "33bf6fbd7cd8379785a21e233d8e09f824e7bab459168a96312c1c882c1d7e1f";
  const outer = "560e3e12b1e0dafa161e62fb3327ad65c98b7cd53849b17c627e8d3e1d419d6a";
  const uid = "0f3c9a2e-7b1d-4e5a-9c8b-2d6f1a0e4b7c";
  assert.deepEqual(containerFromCgroupPath(`/kubepods/burstable/pod${uid}/${outer}`), {
    runtime: "kubernetes",
    id: outer,
    podUid: uid,
  });
  assert.deepEqual(containerFromCgroupPath(`/kubepods/burstable/pod${uid}/${outer}/docker/${inner}`), {
    runtime: "docker",
    id: inner,
  });
  assert.deepEqual(containerFromCgroupPath(`/docker/${outer}/docker/${inner}`), {
    runtime: "docker",
    id: inner,
  });
  assert.deepEqual(containerFromCgroupPath(`/system.slice/docker-${inner}.scope/init.scope/sub`), {
    runtime: "docker",
    id: inner,
  });
  assert.equal(containerFromCgroupPath("/"), null);
  assert.equal(containerFromCgroupPath(""), null);
  assert.equal(containerFromCgroupPath(`/kubepods/burstable/pod${uid}`), null); // the pod itself
  assert.equal(containerFromCgroupPath(`/../../docker-${inner.toUpperCase()}.scope`), null); // ids are lowercase
  assert.equal(containerFromCgroupPath("/docker/deadbeef"), null); // fewer than 12 hex digits
  assert.deepEqual(containerFromCgroupPath(`/../../system.slice/docker-${inner}.scope`), {
    runtime: "docker",
    id: inner,
  }); // outside the reader's cgroup namespace
});

Deno.test("containerOf: cgroup first, mountinfo when the cgroup namespace hides the path", () => {
  const cgroupns = fixture("docker-v2-cgroupns.cgroup");
  const mi = fixture("docker-v2-cgroupns.mountinfo");
  assert.equal(containerFromCgroup(cgroupns), null);
  assert.deepEqual(containerOf(cgroupns, mi), { runtime: "docker", id: D });
  const podman = fixture("podman-v2-systemd.cgroup");
  assert.equal(containerOf(podman, mi)?.runtime, "podman"); // the cgroup wins
  assert.equal(containerOf(null, null), null);
  assert.equal(containerOf(fixture("host-v2-init.cgroup"), fixture("host-v2.mountinfo")), null);
});

Deno.test("parseCgroupFile / cgroupV2PathIn: v1, v2 and hybrid texts", () => {
  const lines = parseCgroupFile(fixture("captured-sandbox-host.cgroup"));
  assert.equal(lines.length, 10);
  assert.deepEqual(lines[0], { hierarchy: 9, controllers: ["name=systemd"], path: "/" });
  assert.deepEqual(lines.at(-1), { hierarchy: 0, controllers: [], path: "/" });
  assert.equal(cgroupV2PathIn(fixture("captured-sandbox-host.cgroup")), "/");
  assert.equal(
    cgroupV2PathIn(fixture("captured-docker-scope-hybrid.cgroup")),
    "/portwatch-capture/docker-a827a8437fbf190da1c9e92f838309a6c90198c35ed20df505c38f3d34765658.scope",
  );
  assert.equal(cgroupV2PathIn(fixture("docker-v1-cgroupfs.cgroup")), null); // pure v1
  assert.deepEqual(parseCgroupFile("3:cpu,cpuacct:/a:b\ngarbage\n\n"), [
    { hierarchy: 3, controllers: ["cpu", "cpuacct"], path: "/a:b" },
  ]);
});

Deno.test("parseMountInfo: optional fields, the separator and \\040 escapes", () => {
  const [m] = parseMountInfo(
    "42 27 254:0 /run/netns /run/my\\040netns rw,relatime shared:1 master:2 - ext4 /dev/vda rw\n",
  );
  assert.deepEqual(m, {
    root: "/run/netns",
    mountPoint: "/run/my netns",
    fsType: "ext4",
    source: "/dev/vda",
  });
  assert.deepEqual(parseMountInfo("bad line\n1 2 3\n"), []);
  assert.equal(parseMountInfo(fixture("captured-sandbox-host.mountinfo")).length, 21);
});

Deno.test("cgroup2MountIn: unified, hybrid and none", () => {
  assert.equal(cgroup2MountIn(fixture("captured-sandbox-host.mountinfo")), "/sys/fs/cgroup/unified");
  assert.equal(cgroup2MountIn(fixture("host-v2.mountinfo")), "/sys/fs/cgroup");
  assert.equal(cgroup2MountIn(fixture("hybrid-bind-subtree.mountinfo")), "/sys/fs/cgroup/unified");
  assert.equal(cgroup2MountIn(fixture("captured-ip-netns-exec.mountinfo")), null);
});

const cgroupRoot = cgroup2Root();

Deno.test({
  name: "cgroupPathOf / cgroupIdOf: this process's cgroup and its directory inode",
  ignore: skipIf(cgroupRoot === null ? "no cgroup v2 hierarchy is mounted" : undefined, "cgroupIdOf self"),
  fn() {
    const path = cgroupPathOf("self");
    assert.ok(path !== null && path.startsWith("/"), `v2 path ${path}`);
    assert.equal(path, cgroupV2PathIn(Deno.readTextFileSync("/proc/self/cgroup")));
    assert.equal(cgroupIdOf(path), Deno.statSync(`${cgroupRoot}${path === "/" ? "" : path}`).ino);
    assert.equal(cgroupIdOf("/"), Deno.statSync(cgroupRoot!).ino);
    assert.throws(() => cgroupIdOf("/../x"), /outside this cgroup namespace/);
    assert.throws(() => cgroupIdOf(`/portwatch-no-such-${crypto.randomUUID()}`), Deno.errors.NotFound);
    assert.throws(() => cgroupIdOf("/", null), /no cgroup v2/);
    assert.equal(cgroupPathOf(2 ** 22 + 7), null); // above pid_max: no such process
  },
});

const sleeper = () => new Deno.Command("sleep", { args: ["300"], stdout: "null", stderr: "null" }).spawn();
async function stop(child: Deno.ChildProcess) {
  try {
    child.kill("SIGKILL");
  } catch { /* gone */ }
  await child.status;
}

Deno.test({
  name:
    "real cgroup: a process in docker-<id>.scope is attributed; CgroupIndex maps its cgroup id, refreshes on miss",
  ignore: skipIf(cgroupSkipReason(), "real cgroup attribution"),
  async fn() {
    const id = Array.from(crypto.getRandomValues(new Uint8Array(32)), (b) => b.toString(16).padStart(2, "0"))
      .join("");
    const cg = makeTestCgroup(`docker-${id}.scope`);
    const child = sleeper();
    let late: ReturnType<typeof makeTestCgroup> | undefined;
    try {
      cg.add(child.pid);
      assert.equal(cgroupPathOf(child.pid), cg.path);
      assert.deepEqual(containerOfPid(child.pid), { runtime: "docker", id });
      assert.equal(containerOfPid("self")?.id === id, false);

      const cgid = cgroupIdOf(cg.path);
      const index = new CgroupIndex({ minRefreshMs: 60_000 });
      assert.equal(index.walks, 0); // lazy
      assert.deepEqual(index.get(cgid), { id: cgid, path: cg.path, container: { runtime: "docker", id } });
      assert.equal(index.walks, 1);
      assert.equal(index.get(cgroupIdOf(cg.top))?.container, null);
      assert.equal(index.containerOf(cgid)?.id, id);
      assert.equal(index.walks, 1); // hits do not walk

      // A cgroup made after the walk: a miss within minRefreshMs does not walk again; refresh() finds it.
      late = makeTestCgroup(`cri-containerd-${id}.scope`);
      const lateId = cgroupIdOf(late.path);
      assert.equal(index.get(lateId), undefined);
      assert.equal(index.walks, 1);
      index.refresh();
      assert.equal(index.get(lateId)?.container?.runtime, "containerd");

      // With minRefreshMs 0 a miss walks at once.
      const eager = new CgroupIndex({ minRefreshMs: 0 });
      assert.equal(eager.get(lateId)?.path, late.path);
      const newer = makeTestCgroup(`libpod-${id}.scope`);
      try {
        assert.deepEqual(eager.containerOf(cgroupIdOf(newer.path)), { runtime: "podman", id });
        assert.equal(eager.walks, 2);
        assert.equal(eager.get(-1), undefined); // unknown ids walk and miss
      } finally {
        await newer.remove();
      }
      eager.refresh();
      assert.ok(eager.size >= 3);
      assert.equal(eager.get(cgid)?.path, cg.path);
    } finally {
      await stop(child);
      await cg.remove();
      await late?.remove();
    }
    assert.throws(() => Deno.statSync(`${cgroupRoot}${cg.top}`), Deno.errors.NotFound);
  },
});
