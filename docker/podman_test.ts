/**
 * The smoke test under rootful Podman, where Podman can start a container: a container of the host's own root
 * filesystem (`--rootfs /:O`, an overlay: no image to pull or build) serving HTTP in a network namespace of
 * its own, and the host-wide watcher (WATCH_SCOPE=host) attributing its port from the kernel (the
 * `libpod-<id>` cgroup) and Podman's state on disk (containers.json): the full id and the name `podman ps`
 * shows. Skips, saying why, where Podman is missing or cannot start a container (on these sandboxes runc is
 * refused setting the container's rlimits).
 * @module
 */
import assert from "node:assert/strict";
import { skipIf } from "../testing/netns.ts";
import { WatcherProc } from "../watcher/testing/watcher_proc.ts";

const NAME =
  "rootful Podman: the watcher attributes a container's port (id and name) without the Podman socket";

async function podman(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command("podman", { args, stdin: "null", stdout: "piped", stderr: "piped" })
    .output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout).trim(), stderr: dec.decode(out.stderr).trim() };
}

async function skipReason(): Promise<string | undefined> {
  if (Deno.build.os !== "linux") return `Podman containers need Linux, this is ${Deno.build.os}`;
  if (Deno.uid() !== 0) return `not root (uid ${Deno.uid()}): the test runs rootful Podman`;
  const version = await podman("--version").catch(() => undefined);
  if (!version || version.code !== 0) return "podman is not installed (apt-get install podman)";
  const tried = await podman("run", "--rm", "--network", "none", "--rootfs", "/:O", "true");
  if (tried.code !== 0) {
    return `podman cannot start a container here: ${tried.stderr.split("\n").at(-1)}`;
  }
  return undefined;
}

const skip = await skipReason();

Deno.test({
  name: NAME,
  ignore: skipIf(skip, NAME),
  async fn() {
    const name = `pwpodman-${crypto.randomUUID().slice(0, 8)}`;
    const port = 7401;
    const watcher = WatcherProc.start({ WATCH_SCOPE: "host", SCAN_INTERVAL: "0.2", LOG_LEVEL: "info" });
    try {
      const started = await podman(
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "none",
        "--rootfs",
        "/:O",
        "python3",
        "-m",
        "http.server",
        String(port),
      );
      assert.equal(started.code, 0, `podman run: ${started.stderr}`);
      const id = (await podman("inspect", "--format", "{{.Id}}", name)).stdout;
      assert.match(id, /^[0-9a-f]{64}$/);
      const [open] = await watcher.waitFor(
        `port ${port} in ${name}`,
        (e) => e.event === "open" && e.port === port && e.container_id === id,
        1,
        20_000,
      );
      assert.equal(open.container_name, name, "the name podman ps shows, from containers.json");
      assert.ok(open.pids.length > 0, "the python process");
      assert.equal((await podman("rm", "-f", name)).code, 0);
      const [close] = await watcher.waitFor(
        `close of ${port}`,
        (e) => e.event === "close" && e.port === port && e.container_id === id,
      );
      assert.deepEqual(close.last_pids, open.pids);
    } finally {
      await podman("rm", "-f", name);
      await watcher.stop();
    }
  },
});
