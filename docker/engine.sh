#!/usr/bin/env bash
# Start or stop a Docker engine by hand, for machines where no init system starts one (CI, these sandboxes),
# and leave the host's network as it was: dockerd sets iptables' FORWARD policy to DROP, turns ip_forward on,
# adds its own chains and the docker0 bridge.
#   docker/engine.sh start    save iptables and ip_forward, start dockerd, wait until `docker info` answers
#   docker/engine.sh stop     stop dockerd, remove docker0, restore iptables and ip_forward as saved
#   docker/engine.sh status   exit 0 when an engine answers
# Settings: DOCKER_DATA_ROOT (default /var/lib/docker, where compose.yaml looks for Docker's state; CI gives the
# engine a data root of its own), DOCKER_STATE (default /run/portwatch-docker: the pid file, the log, the saved
# network state).
set -euo pipefail
data_root=${DOCKER_DATA_ROOT:-/var/lib/docker}
state=${DOCKER_STATE:-/run/portwatch-docker}
pidfile=$state/dockerd.pid

answers() { timeout 5 docker info >/dev/null 2>&1; }

start() {
  if answers; then
    echo "docker engine: already running ($(docker info --format '{{.ServerVersion}} {{.DockerRootDir}}'))"
    return 0
  fi
  command -v dockerd >/dev/null || {
    echo "docker engine: no dockerd; install it: apt-get install docker.io docker-compose" >&2
    return 1
  }
  mkdir -p "$state" "$data_root"
  iptables-save >"$state/iptables.v4" 2>/dev/null || true
  ip6tables-save >"$state/iptables.v6" 2>/dev/null || true
  sysctl -n net.ipv4.ip_forward >"$state/ip_forward"
  # containerd comes with docker.io; dockerd starts its own when none runs
  dockerd --data-root "$data_root" --exec-root "$state/exec" --pidfile "$pidfile" \
    >"$state/dockerd.log" 2>&1 &
  for _ in $(seq 1 120); do
    if answers; then
      echo "docker engine: up ($(docker info --format '{{.ServerVersion}}, {{.Driver}}, cgroup {{.CgroupVersion}} {{.CgroupDriver}}'), data root $data_root)"
      if [ "$data_root" != /var/lib/docker ]; then
        echo "docker engine: for attribution, compose.yaml mounts <data root>/containers: export DOCKER_DATA_ROOT=$data_root (just does it by itself)"
      fi
      return 0
    fi
    if ! kill -0 "$(cat "$pidfile" 2>/dev/null || echo $!)" 2>/dev/null && [ -s "$state/dockerd.log" ]; then
      break
    fi
    sleep 0.5
  done
  echo "docker engine: dockerd did not answer within 60 s; its log ($state/dockerd.log):" >&2
  tail -n 20 "$state/dockerd.log" >&2
  stop
  return 1
}

# iptables-restore replaces only the tables its input names: a table that was empty when saved (iptables-save
# prints nothing for it) is named here with its built-in chains and ACCEPT policies, so that dockerd's chains,
# rules and FORWARD DROP go too.
restore() {
  local cmd=$1 saved=$2
  [ -f "$saved" ] || return 0
  {
    cat "$saved"
    grep -q '^\*filter' "$saved" || printf '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n'
    grep -q '^\*nat' "$saved" ||
      printf '*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n'
  } | "$cmd-restore" && rm -f "$saved"
}

stop() {
  if [ ! -f "$pidfile" ] && [ ! -f "$state/iptables.v4" ]; then
    echo "docker engine: none was started by this script ($state)"
    return 0
  fi
  if [ -f "$pidfile" ]; then
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$pidfile"
  fi
  pkill -f "containerd --config /var/run/docker/containerd/containerd.toml" 2>/dev/null || true
  ip link del docker0 2>/dev/null || true
  for link in $(ip -o link show type bridge 2>/dev/null | awk -F': ' '$2 ~ /^br-/ {print $2}'); do
    ip link del "$link" 2>/dev/null || true
  done
  restore iptables "$state/iptables.v4"
  restore ip6tables "$state/iptables.v6"
  if [ -f "$state/ip_forward" ]; then sysctl -qw "net.ipv4.ip_forward=$(cat "$state/ip_forward")" && rm -f "$state/ip_forward"; fi
  echo "docker engine: stopped; iptables and ip_forward restored"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) answers ;;
  *) echo "usage: docker/engine.sh start|stop|status" >&2; exit 2 ;;
esac
