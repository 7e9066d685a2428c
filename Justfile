# portwatch: the seed's Makefile workflow with just (npm i -g rust-just).
# With a Docker engine the recipes drive compose.yaml; without one (or PORTWATCH_RUNTIME=netns) the same stack
# runs as processes, each "container" a network namespace with its own cgroup (see stack/).

set shell := ["bash", "-euo", "pipefail", "-c"]

deno := env("DENO", "deno")
stack := deno + " run --allow-all " + justfile_directory() + "/stack/main.ts"
testers := justfile_directory() + "/testers"
run := deno + " run --allow-all"

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

# an HTTP server answering "Hello <port>" in nodejs-tester
test-http PORT="8000":
    {{stack}} spawn nodejs-tester -- {{run}} {{testers}}/http.ts {{PORT}}

# a bound UDP socket in python-tester
test-udp PORT:
    {{stack}} spawn python-tester -- {{run}} {{testers}}/hold.ts udp {{PORT}}

# the seed's classic: something listening on 3000, then what the listener knows of it
test-3000:
    {{stack}} spawn nodejs-tester -- {{run}} {{testers}}/http.ts 3000
    sleep 3
    {{stack}} verify-port 3000

# kill whatever holds PORT in the tester containers
kill-port PORT:
    {{stack}} exec nodejs-tester -- {{run}} {{testers}}/kill_port.ts {{PORT}} || {{stack}} exec python-tester -- {{run}} {{testers}}/kill_port.ts {{PORT}}

# a port held HOLD_MS then closed (tcp or udp)
transient PROTO="tcp" PORT="4000":
    {{stack}} exec nodejs-tester -- {{run}} {{testers}}/transient.ts {{PROTO}} {{PORT}} --ms {{HOLD_MS}}

# COUNT ports from BASE_PORT, each held HOLD_MS (just burst tcp 6)
burst PROTO="tcp" COUNT="6":
    {{stack}} exec python-tester -- {{run}} {{testers}}/burst.ts {{PROTO}} {{COUNT}} --base {{BASE_PORT}} --hold-ms {{HOLD_MS}}

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
    tail -n 50 -f {{justfile_directory()}}/.stack/logs/portwatcher.log

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

# the main job without the stack: listener + the best watcher of this host
start:
    {{deno}} task start

# the test suite
test:
    {{deno}} task test
