import assert from "node:assert/strict";
import { ConfigError, envOf } from "../../infra/env.ts";
import {
  DEFAULT_CONTAINER_STATE_DIRS,
  DEFAULT_HOST_NAME_FILE,
  hostNameFileFrom,
  parseHostNameFile,
  parseStateDirs,
  stateDirsFrom,
} from "./attribution_settings.ts";

Deno.test("CONTAINER_STATE_DIRS: defaults read each runtime's directory here and under /host", () => {
  const dirs = stateDirsFrom(envOf({}));
  assert.deepEqual(dirs, [...DEFAULT_CONTAINER_STATE_DIRS]);
  for (
    const d of [
      "/var/lib/docker/containers",
      "/host/var/lib/docker/containers",
      "/run/containerd/io.containerd.runtime.v2.task",
      "/host/run/containerd/io.containerd.runtime.v2.task",
      "/var/lib/containers/storage/overlay-containers",
      "/host/var/lib/containers/storage/overlay-containers",
    ]
  ) assert.ok(dirs.includes(d), d);
});

Deno.test("CONTAINER_STATE_DIRS: ':' or ',' separated absolute paths, deduplicated; 'none' reads none", () => {
  assert.deepEqual(
    parseStateDirs(
      "CONTAINER_STATE_DIRS",
      " /srv/docker/containers/:/host/srv/docker/containers, /srv/docker/containers",
    ),
    ["/srv/docker/containers", "/host/srv/docker/containers"],
  );
  assert.deepEqual(stateDirsFrom(envOf({ CONTAINER_STATE_DIRS: "none" })), []);
});

Deno.test("CONTAINER_STATE_DIRS: a relative path, '..' or nothing but separators is a ConfigError naming it", () => {
  for (const bad of ["var/lib/docker/containers", "/var/lib/../../etc", ":,:", "/ok:relative"]) {
    assert.throws(
      () => stateDirsFrom(envOf({ CONTAINER_STATE_DIRS: bad })),
      (e) =>
        e instanceof ConfigError && e.setting === "CONTAINER_STATE_DIRS" && e.value === bad &&
        /absolute directory paths/.test(e.message),
      bad,
    );
  }
});

Deno.test("HOST_NAME_FILE: default /host/etc/hostname; an absolute path; 'none'; else a ConfigError", () => {
  assert.equal(hostNameFileFrom(envOf({})), DEFAULT_HOST_NAME_FILE);
  assert.equal(DEFAULT_HOST_NAME_FILE, "/host/etc/hostname");
  assert.equal(hostNameFileFrom(envOf({ HOST_NAME_FILE: "/etc/host-name" })), "/etc/host-name");
  assert.equal(parseHostNameFile("HOST_NAME_FILE", "none"), null);
  for (const bad of ["etc/hostname", "/etc/", "/etc/host\u0001name"]) {
    assert.throws(
      () => hostNameFileFrom(envOf({ HOST_NAME_FILE: bad })),
      (e) =>
        e instanceof ConfigError && e.setting === "HOST_NAME_FILE" && /absolute file path/.test(e.message),
      bad,
    );
  }
});
