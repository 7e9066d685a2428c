# portwatch: the seed's Makefile workflow with just (npm i -g rust-just).
# With a Docker engine and compose (v2 `docker compose` or v1 `docker-compose`) the recipes drive compose.yaml;
# without them (or PORTWATCH_RUNTIME=netns) the same stack runs as processes, each "container" a network
# namespace with its own cgroup (see stack/). Tester commands name `deno` and testers/...: inside a container
# that is the image's deno and /app/testers, in the namespace stack this deno and this checkout.

set shell := ["bash", "-euo", "pipefail", "-c"]

deno := env("DENO", "deno")
stack := deno + " run --allow-all " + justfile_directory() + "/stack/main.ts"
run := "deno run --allow-all"

# Seed variables (environment overrides them; the watchers read the same names)
SCAN_INTERVAL := env("SCAN_INTERVAL", "1")
BURST_SCANS := env("BURST_SCANS", "5")
BURST_DELAY := env("BURST_DELAY", "0.02")
HOLD_MS := env("HOLD_MS", "1500")
BASE_PORT := env("BASE_PORT", "6000")

# list the recipes
default:
    @just --list

# listener + watchers in portwatcher, nodejs-tester, python-tester
up:
    {{stack}} up

# up with the seed's high-fidelity scan settings (SCAN_INTERVAL=1 BURST_SCANS=5 BURST_DELAY=0.02)
up-hf:
    SCAN_INTERVAL={{SCAN_INTERVAL}} BURST_SCANS={{BURST_SCANS}} BURST_DELAY={{BURST_DELAY}} {{stack}} up hf

# up-hf under supervisord: a watcher that dies is restarted (its snapshot avoids loss and repeats)
up-sv:
    SCAN_INTERVAL={{SCAN_INTERVAL}} BURST_SCANS={{BURST_SCANS}} BURST_DELAY={{BURST_DELAY}} {{stack}} up sv

# the last stored events, then follow the live stream (Ctrl-C to leave)
logs N="20":
    {{stack}} logs {{N}}

# stored events since SINCE (ISO time or 15m, 2h, 7d)
logs-since SINCE="15m":
    {{stack}} logs-since {{SINCE}}

# an HTTP server answering "Hello <port>" in nodejs-tester, in the background (the seed's port: 5000)
test-http PORT="5000":
    {{stack}} spawn nodejs-tester -- {{run}} testers/http.ts {{PORT}}

# a bound UDP socket in python-tester, in the background (the seed's port: 5354)
test-udp PORT="5354":
    {{stack}} spawn python-tester -- {{run}} testers/hold.ts udp {{PORT}}

# the seed's classic: "Hello 3000" in nodejs-tester (Docker: curl -s http://localhost:3000), then the listener's view
test-3000:
    {{stack}} spawn nodejs-tester -- {{run}} testers/http.ts 3000
    {{stack}} verify-port 3000 --wait 10 --container nodejs-tester

# kill whatever holds PORT in the tester containers
kill-port PORT:
    {{stack}} exec nodejs-tester -- {{run}} testers/kill_port.ts {{PORT}} || {{stack}} exec python-tester -- {{run}} testers/kill_port.ts {{PORT}}

# a port held HOLD_MS then closed (tcp or udp)
transient PROTO="tcp" PORT="4000":
    {{stack}} exec nodejs-tester -- {{run}} testers/transient.ts {{PROTO}} {{PORT}} --ms {{HOLD_MS}}

# COUNT ports from BASE_PORT, each held HOLD_MS (just burst tcp 6)
burst PROTO="tcp" COUNT="6":
    {{stack}} exec python-tester -- {{run}} testers/burst.ts {{PROTO}} {{COUNT}} --base {{BASE_PORT}} --hold-ms {{HOLD_MS}}

# steady, transient and burst cases: PASS/FAIL from the listener's query API
verify-suite:
    {{stack}} verify-suite

# what the listener knows about PORT
verify-port PORT:
    {{stack}} verify-port {{PORT}}

# the stack with the eBPF watcher in portwatcher (bpftrace; polling fallback if it cannot run)
ebpf-up:
    {{stack}} up ebpf

# the eBPF watcher's own log
ebpf-logs:
    {{stack}} ebpf-logs

# stop the eBPF stack
ebpf-stop:
    {{stack}} stop

# a shell inside NAME (portwatcher, nodejs-tester, python-tester)
shell NAME:
    {{stack}} shell {{NAME}}

# stop everything: watchers send their shutdown closes first; no process, namespace or cgroup is left
stop:
    {{stack}} stop

# stop, then remove the stack's state and logs
clean:
    {{stack}} clean

# Docker on a machine without an init system (CI, sandboxes): start or stop dockerd; stop restores iptables
docker-engine ACTION="start":
    bash {{justfile_directory()}}/docker/engine.sh {{ACTION}}

# base images (denoland/deno, postgres) built locally from Debian's packages, where no registry is reachable
docker-base:
    bash {{justfile_directory()}}/docker/base/build.sh

# `docker compose` through compose v1 (Debian 12's docker-compose), where no compose v2 is installed
docker-compose-v1:
    bash {{justfile_directory()}}/docker/compose-v1/install.sh

# the main job without the stack: listener + the best watcher of this host
start:
    {{deno}} task start

# the test suite
test:
    {{deno}} task test
