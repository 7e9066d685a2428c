#!/usr/bin/env bash
# Container healthcheck without curl or wget: GET http://HOST:PORT/PATH over bash's /dev/tcp, healthy (exit 0)
# on a 2xx status line; anything else exits 1 with the reason on stderr.
#   healthcheck.sh [HOST [PORT [PATH]]]   defaults: 127.0.0.1, $LISTENER_PORT (else 8080), /healthz
set -uo pipefail
host=${1:-127.0.0.1}
port=${2:-${LISTENER_PORT:-8080}}
path=${3:-/healthz}
if ! exec 3<>"/dev/tcp/$host/$port"; then
  echo "unhealthy: cannot connect to $host:$port" >&2
  exit 1
fi
printf 'GET %s HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\n\r\n' "$path" "$host" "$port" >&3
if ! IFS= read -r -t 5 status <&3; then
  echo "unhealthy: no answer from http://$host:$port$path" >&2
  exit 1
fi
status=${status%$'\r'}
case "$status" in
  "HTTP/1."?" 2"[0-9][0-9]*) exit 0 ;;
esac
echo "unhealthy: http://$host:$port$path answered \"$status\"" >&2
exit 1
