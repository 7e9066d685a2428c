#!/usr/bin/env bash
# `just docker-compose-v1`: install ./docker-compose as the docker CLI's compose plugin, so that `docker compose`
# runs compose v1 where no compose v2 is installed. Leaves a working `docker compose` (a real v2) alone.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${DOCKER_CLI_PLUGINS:-/usr/local/lib/docker/cli-plugins}
first=$(docker compose version 2>/dev/null | head -n1 || true)
if [ -n "$first" ] && [[ "$first" != "docker-compose version 1"* ]]; then
  echo "docker compose: already there ($(docker compose version | head -n1)); nothing to do"
  exit 0
fi
command -v docker-compose >/dev/null || {
  echo "docker-compose-v1: no docker-compose; install it first: apt-get install docker-compose" >&2
  exit 1
}
mkdir -p "$dir"
install -m 755 "$here/docker-compose" "$dir/docker-compose"
echo "docker compose: $(docker compose version --short 2>/dev/null || docker compose version | head -n1) (v1, via $dir/docker-compose)"
