#!/bin/sh
# Entrypoint of the portwatch image (docker/Dockerfile; tini runs it). When PORTWATCH_USER names a user and the
# container runs as root, each directory in PORTWATCH_WRITABLE (space-separated, e.g. the listener's /logs,
# which a bind mount leaves owned by root) is created and given to that user, and the command then runs as
# that user, without root's capabilities (setpriv, from util-linux). Otherwise the command runs as it is: the
# watchers stay root, and a container started with `user:` / --user runs as that user and skips the chown.
set -eu
if [ -n "${PORTWATCH_USER:-}" ] && [ "$(id -u)" = 0 ]; then
  for dir in ${PORTWATCH_WRITABLE:-}; do
    mkdir -p "$dir"
    chown -R "$PORTWATCH_USER:$(id -gn "$PORTWATCH_USER")" "$dir"
  done
  HOME=$(getent passwd "$PORTWATCH_USER" | cut -d: -f6)
  export HOME
  exec setpriv --reuid="$PORTWATCH_USER" --regid="$(id -g "$PORTWATCH_USER")" --init-groups -- "$@"
fi
exec "$@"
