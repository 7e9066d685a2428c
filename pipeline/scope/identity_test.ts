import assert from "node:assert/strict";
import { ConfigError, envOf } from "../../infra/env.ts";
import {
  detectHost,
  detectHostInfo,
  detectIdentity,
  hostFallbackWarning,
  type Identity,
  isShortIdHostname,
  netnsInode,
} from "./identity.ts";
import { ContainerMetaLookup } from "./runtime_lookup.ts";
import { NetNs, netnsSkipReason, skipIf } from "../../testing/netns.ts";

const FIXTURES = new URL("./testing/fixtures/cgroup/", import.meta.url);
const fixture = (name: string) => Deno.readTextFileSync(new URL(name, FIXTURES));
const D = "d548c5b83fa61d8e3bd86ad42a7ffea9b7c86e3f9d8095c1577d3e1270bb9420";
const P = "2f259bab93aaaaa2542ba43ef33eb990d0999ee1b9924b557b7be53c0b7a1bb9";

/**
 * A proc-like tree in a temporary directory, made of fixture texts: pid directories with cgroup, mountinfo,
 * root/etc/hostname and ns/uts links, plus sys/kernel/hostname (what this process's own hostname reads).
 */
function fakeProc(
  spec: {
    pids?: Record<string, { cgroup?: string; mountinfo?: string; hostname?: string; uts?: string }>;
    kernelHostname?: string;
  },
): { dir: string; [Symbol.dispose](): void } {
  const dir = Deno.makeTempDirSync({ prefix: "pw-proc-" });
  for (const [pid, p] of Object.entries(spec.pids ?? {})) {
    Deno.mkdirSync(`${dir}/${pid}/ns`, { recursive: true });
    if (p.cgroup !== undefined) Deno.writeTextFileSync(`${dir}/${pid}/cgroup`, fixture(p.cgroup));
    if (p.mountinfo !== undefined) Deno.writeTextFileSync(`${dir}/${pid}/mountinfo`, fixture(p.mountinfo));
    if (p.hostname !== undefined) {
      Deno.mkdirSync(`${dir}/${pid}/root/etc`, { recursive: true });
      Deno.writeTextFileSync(`${dir}/${pid}/root/etc/hostname`, p.hostname);
    }
    if (p.uts !== undefined) Deno.symlinkSync(p.uts, `${dir}/${pid}/ns/uts`); // dangling, as readlink needs
  }
  if (spec.kernelHostname !== undefined) {
    Deno.mkdirSync(`${dir}/sys/kernel`, { recursive: true });
    Deno.writeTextFileSync(`${dir}/sys/kernel/hostname`, spec.kernelHostname);
  }
  return { dir, [Symbol.dispose]: () => Deno.removeSync(dir, { recursive: true }) };
}

const HOST = envOf({ HOST_NAME: "node-a" });

Deno.test("detectIdentity: a docker container's process, named by its hostname", () => {
  using proc = fakeProc({
    pids: { 4242: { cgroup: "docker-v2-systemd.cgroup", hostname: "web\n" } },
  });
  const want: Identity = { host: "node-a", container_id: D, container_name: "web", runtime: "docker" };
  assert.deepEqual(detectIdentity(HOST, 4242, proc.dir), want);
});

Deno.test("detectIdentity: a hostname that is the short id (docker's default) gives no name", () => {
  using proc = fakeProc({
    pids: {
      1: { cgroup: "docker-v1-cgroupfs.cgroup", hostname: `${D.slice(0, 12)}\n` },
      2: { cgroup: "docker-v1-cgroupfs.cgroup", hostname: D },
      3: { cgroup: "docker-v1-cgroupfs.cgroup", hostname: "d548c5b83fa6-api" },
      4: { cgroup: "docker-v1-cgroupfs.cgroup" }, // no /etc/hostname readable
    },
  });
  assert.equal(detectIdentity(HOST, 1, proc.dir).container_name, null);
  assert.equal(detectIdentity(HOST, 2, proc.dir).container_name, null);
  assert.equal(detectIdentity(HOST, 3, proc.dir).container_name, "d548c5b83fa6-api");
  assert.deepEqual(detectIdentity(HOST, 4, proc.dir), {
    host: "node-a",
    container_id: D,
    container_name: null,
    runtime: "docker",
  });
  assert.equal(isShortIdHostname(D.slice(0, 12), D), true);
  assert.equal(isShortIdHostname(D.slice(0, 11), D), false);
  assert.equal(isShortIdHostname("web", D), false);
  assert.equal(isShortIdHostname(D.slice(1, 13), D), false);
});

Deno.test("detectIdentity: a host process has no container, even with a hostname", () => {
  using proc = fakeProc({
    pids: { 7: { cgroup: "host-v2-systemd.cgroup", mountinfo: "host-v2.mountinfo", hostname: "laptop" } },
  });
  assert.deepEqual(detectIdentity(HOST, 7, proc.dir), {
    host: "node-a",
    container_id: null,
    container_name: null,
    runtime: null,
  });
});

Deno.test("detectIdentity: a private cgroup namespace falls back to mountinfo", () => {
  using proc = fakeProc({
    pids: {
      9: { cgroup: "docker-v2-cgroupns.cgroup", mountinfo: "docker-v2-cgroupns.mountinfo", hostname: "api" },
      10: { cgroup: "docker-v2-cgroupns.cgroup", mountinfo: "podman-rootful-cgroupns.mountinfo" },
    },
  });
  assert.deepEqual(detectIdentity(HOST, 9, proc.dir), {
    host: "node-a",
    container_id: D,
    container_name: "api",
    runtime: "docker",
  });
  assert.equal(detectIdentity(HOST, 10, proc.dir).runtime, "podman");
  assert.equal(detectIdentity(HOST, 10, proc.dir).container_id, P);
});

Deno.test("detectIdentity: CONTAINER_ID / CONTAINER_NAME override; runtime only when the ids agree", () => {
  using proc = fakeProc({
    pids: {
      5: { cgroup: "docker-v2-systemd.cgroup", hostname: "from-hostname" },
      6: { cgroup: "host-v2-init.cgroup" },
    },
  });
  const env = (r: Record<string, string>) => envOf({ HOST_NAME: "node-a", ...r });
  assert.deepEqual(detectIdentity(env({ CONTAINER_NAME: "svc" }), 5, proc.dir), {
    host: "node-a",
    container_id: D,
    container_name: "svc",
    runtime: "docker",
  });
  assert.deepEqual(detectIdentity(env({ CONTAINER_ID: D.slice(0, 12) }), 5, proc.dir), {
    host: "node-a",
    container_id: D.slice(0, 12),
    container_name: "from-hostname",
    runtime: "docker",
  });
  assert.deepEqual(detectIdentity(env({ CONTAINER_ID: "web-1", CONTAINER_NAME: "web" }), 5, proc.dir), {
    host: "node-a",
    container_id: "web-1",
    container_name: "web",
    runtime: null,
  });
  // Set on a host process: the settings are taken as given.
  assert.deepEqual(detectIdentity(env({ CONTAINER_ID: "abc", CONTAINER_NAME: "x" }), 6, proc.dir), {
    host: "node-a",
    container_id: "abc",
    container_name: "x",
    runtime: null,
  });
  // Blank means unset.
  assert.equal(
    detectIdentity(env({ CONTAINER_ID: "  ", CONTAINER_NAME: "" }), 6, proc.dir).container_id,
    null,
  );
});

Deno.test("detectIdentity: bad settings are ConfigErrors naming the variable", () => {
  using proc = fakeProc({ pids: { 5: { cgroup: "host-v2-init.cgroup" } } });
  for (
    const [name, value] of [["CONTAINER_ID", "a\nb"], ["CONTAINER_NAME", "x".repeat(256)], [
      "HOST_NAME",
      "h\u0007",
    ]]
  ) {
    assert.throws(
      () => detectIdentity(envOf({ HOST_NAME: "ok", [name]: value }), 5, proc.dir),
      (e: unknown) => e instanceof ConfigError && e.setting === name,
    );
  }
});

Deno.test("detectHost: HOST_NAME, NODE_NAME, the shared UTS namespace, pid 1's /etc/hostname, own", () => {
  const utsHost = "uts:[4026531838]";
  const utsOther = "uts:[4026532999]";
  {
    using proc = fakeProc({
      pids: { 1: { uts: utsHost }, self: { uts: utsHost } },
      kernelHostname: "machine\n",
    });
    assert.equal(detectHost(envOf({ HOST_NAME: "h", NODE_NAME: "n" }), proc.dir), "h");
    assert.equal(detectHost(envOf({ NODE_NAME: "n" }), proc.dir), "n");
    assert.equal(detectHost(envOf({}), proc.dir), "machine");
  }
  {
    // In a container with --pid=host: pid 1 is the host's init, in another UTS namespace.
    using proc = fakeProc({
      pids: { 1: { uts: utsHost, hostname: "real-host\n" }, self: { uts: utsOther } },
      kernelHostname: "3f4e1c2b9a7d",
    });
    assert.equal(detectHost(envOf({}), proc.dir), "real-host");
  }
  {
    // pid 1 not inspectable (or its /etc/hostname missing): this process's own host name.
    using proc = fakeProc({ pids: { 1: {}, self: { uts: utsOther } }, kernelHostname: "own" });
    assert.equal(detectHost(envOf({}), proc.dir), "own");
    using proc2 = fakeProc({
      pids: { 1: { uts: utsHost }, self: { uts: utsOther } },
      kernelHostname: "own2",
    });
    assert.equal(detectHost(envOf({}), proc2.dir), "own2");
  }
});

Deno.test("detectHostInfo: HOST_NAME_FILE before the own host name when pid 1's is hidden; the warning", () => {
  const utsOther = "uts:[4026532999]";
  const dir = Deno.makeTempDirSync({ prefix: "pw-hostfile-" });
  try {
    Deno.writeTextFileSync(`${dir}/hostname`, "real-host\n");
    // pid 1 hidden (hidepid, or not ours): no ns/uts, no root/etc/hostname.
    using proc = fakeProc({ pids: { self: { uts: utsOther } }, kernelHostname: "3f4e1c2b9a7d" });
    const file = envOf({ HOST_NAME_FILE: `${dir}/hostname` });
    assert.deepEqual(detectHostInfo(file, proc.dir), { host: "real-host", source: "file" });
    const missing = envOf({ HOST_NAME_FILE: `${dir}/nope` });
    const own = detectHostInfo(missing, proc.dir);
    assert.deepEqual(own, { host: "3f4e1c2b9a7d", source: "own" });
    const warning = hostFallbackWarning(own, `${dir}/nope`);
    assert.match(warning ?? "", /host's name cannot be read/);
    assert.match(warning ?? "", /set HOST_NAME, or mount the host's \/etc\/hostname read-only at /);
    assert.match(warning ?? "", /"3f4e1c2b9a7d"/);
    assert.equal(hostFallbackWarning({ host: "real-host", source: "file" }, `${dir}/hostname`), undefined);
    assert.equal(detectHostInfo(envOf({ HOST_NAME: "h" }), proc.dir).source, "setting");
    assert.throws(() => detectHostInfo(envOf({ HOST_NAME_FILE: "relative" }), proc.dir), ConfigError);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("detectIdentity: with the runtime's state, the name docker ps shows, the image, compose labels", () => {
  const state = Deno.makeTempDirSync({ prefix: "pw-state-" });
  try {
    Deno.mkdirSync(`${state}/containers/${D}`, { recursive: true });
    Deno.writeTextFileSync(
      `${state}/containers/${D}/config.v2.json`,
      JSON.stringify({
        ID: D,
        Name: "/portwatcher",
        Config: {
          Image: "portwatch_portwatcher",
          Labels: {
            "com.docker.compose.project": "portwatch",
            "com.docker.compose.service": "portwatcher",
          },
        },
      }),
    );
    using proc = fakeProc({
      pids: {
        1: { cgroup: "docker-v1-cgroupfs.cgroup", hostname: `${D.slice(0, 12)}\n` },
        self: { cgroup: "host-v2-systemd.cgroup" },
      },
      kernelHostname: "whatever",
    });
    const lookup = new ContainerMetaLookup([`${state}/nowhere`, `${state}/containers`]);
    const want: Identity = {
      host: "node-a",
      container_id: D,
      container_name: "portwatcher",
      runtime: "docker",
      image: "portwatch_portwatcher",
      compose_project: "portwatch",
      compose_service: "portwatcher",
    };
    assert.deepEqual(detectIdentity(HOST, 1, proc.dir, lookup), want);
    // A short CONTAINER_ID is completed to the full id; CONTAINER_NAME still overrides the name.
    const self = detectIdentity(
      envOf({ HOST_NAME: "node-a", CONTAINER_ID: D.slice(0, 12), CONTAINER_NAME: "mine" }),
      "self",
      proc.dir,
      lookup,
    );
    assert.deepEqual(self, { ...want, container_name: "mine", runtime: null });
    // Without the state: the hostname rule (the short id says nothing), and the new fields are null.
    assert.deepEqual(detectIdentity(HOST, 1, proc.dir, new ContainerMetaLookup([])), {
      ...want,
      container_name: null,
      image: null,
      compose_project: null,
      compose_service: null,
    });
    assert.equal(lookup.stats.reads, 2, "read once per id (the full id and the short one)");
    detectIdentity(HOST, 1, proc.dir, lookup);
    assert.equal(lookup.stats.reads, 2);
  } finally {
    Deno.removeSync(state, { recursive: true });
  }
});

Deno.test('detectIdentity("self"): a container\'s own name comes from its kernel host name', () => {
  using proc = fakeProc({
    pids: { self: { cgroup: "k8s-containerd-systemd-v2.cgroup" } },
    kernelHostname: "checkout-7d9f8b6c5-x2x9q\n",
  });
  assert.deepEqual(detectIdentity(envOf({ NODE_NAME: "worker-3" }), "self", proc.dir), {
    host: "worker-3",
    container_id: "2397d068a8d1552a4c3f9147ba9c94e086bfd66fb2acb5bbaf47197105127d5f",
    container_name: "checkout-7d9f8b6c5-x2x9q",
    runtime: "containerd",
  });
});

Deno.test("detectIdentity: this process on the real /proc", () => {
  const id = detectIdentity(envOf({}));
  assert.ok(id.host.length > 0);
  const initUts = (() => {
    try {
      return Deno.readLinkSync("/proc/1/ns/uts");
    } catch {
      return undefined;
    }
  })();
  if (initUts === undefined || initUts === Deno.readLinkSync("/proc/self/ns/uts")) {
    assert.equal(id.host, Deno.hostname());
  }
  assert.equal(detectIdentity(envOf({ HOST_NAME: "x" })).host, "x");
  if (id.container_id === null) assert.deepEqual([id.container_name, id.runtime], [null, null]);
});

Deno.test("netnsInode: the N of net:[N]", () => {
  const link = Deno.readLinkSync("/proc/self/ns/net");
  assert.equal(`net:[${netnsInode()}]`, link);
  assert.equal(netnsInode(Deno.pid), netnsInode("self"));
  assert.throws(() => netnsInode(2 ** 22 + 7), Deno.errors.NotFound);
});

Deno.test({
  name: "netnsInode: a process in another namespace has that namespace's inode",
  ignore: skipIf(netnsSkipReason(), "netnsInode other namespace"),
  async fn() {
    const ns = await NetNs.create();
    try {
      const h = await ns.holder({ sockets: [{ proto: "tcp", host: "127.0.0.1" }] });
      assert.equal(netnsInode(h.pid), Deno.statSync(ns.path).ino);
      assert.notEqual(netnsInode(h.pid), netnsInode());
    } finally {
      await ns.delete();
    }
  },
});
