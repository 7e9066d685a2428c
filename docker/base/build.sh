#!/usr/bin/env bash
# `just docker-base`: local stand-ins for the base images docker/Dockerfile and compose.yaml name, built from
# Debian's packages with mmdebstrap and `docker import`, for machines that reach Debian's mirror but no image
# registry. Each is tagged with the upstream name, so `docker compose up -d --build` (or docker-compose) then
# builds and runs as written, without pulling:
#   denoland/deno:debian-<v>   Debian bookworm minbase, ca-certificates, /tini, /usr/bin/deno (the running
#                              Deno, or DENO_BIN), user deno (uid 1993), DENO_DIR=/deno-dir, as upstream
#   postgres:15-bookworm       Debian's postgresql-15, with an entrypoint that creates POSTGRES_USER,
#                              POSTGRES_PASSWORD and POSTGRES_DB on first start, as upstream (base/postgres-entrypoint.sh)
# The deno stand-in also trusts the build machine's certificate store (DENO_CERT), so that `deno install` in the
# build works behind a TLS-intercepting proxy; that is the stand-in's only: the upstream image, and so an image
# built on it, trusts only the usual CAs. An image already present is kept (BASE_REBUILD=1 rebuilds it).
# Settings: DENO_VERSION (default: the Dockerfile's), DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
deno_version=${DENO_VERSION:-$(sed -n "s|^ARG DENO_IMAGE=denoland/deno:debian-||p" "$root/docker/Dockerfile" | head -n1)}
deno_bin=${DENO_BIN:-$(command -v deno || true)}

say() { printf 'docker-base: %s\n' "$*"; }
die() { printf 'docker-base: %s\n' "$*" >&2; exit 1; }

command -v mmdebstrap >/dev/null || die "mmdebstrap is missing: apt-get install mmdebstrap"
docker info >/dev/null 2>&1 || die "no Docker engine answers (docker info): start one (docker/engine.sh start)"

have() { [ -z "${BASE_REBUILD:-}" ] && docker image inspect "$1" >/dev/null 2>&1; }

sources() {
  printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb %s bookworm-security main\n' \
    "$mirror" "$mirror" "${mirror%/debian}/debian-security"
}

# mmdebstrap ... | docker import: $1 tag, $2 packages (comma-separated), then --change options, after a --
# the customize hooks
import() {
  local tag=$1 include=$2
  shift 2
  local changes=() hooks=()
  while (($#)) && [ "$1" != -- ]; do changes+=(--change "$1"); shift; done
  (($#)) && shift
  for h in "$@"; do hooks+=(--customize-hook="$h"); done
  local start=$SECONDS
  local tar
  tar=$(mktemp --suffix=.tar)
  trap 'rm -f "$tar"' RETURN
  sources | mmdebstrap --quiet --variant=minbase --include="$include" --format=tar \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
    "${hooks[@]}" bookworm "$tar" - || die "mmdebstrap failed for $tag (is $mirror reachable?)"
  docker import "${changes[@]}" \
    --change 'LABEL org.opencontainers.image.description="portwatch local stand-in, built by just docker-base"' \
    "$tar" "$tag" >/dev/null
  say "$tag built in $((SECONDS - start)) s ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
}

deno_image=denoland/deno:debian-$deno_version
if have "$deno_image"; then
  say "$deno_image present"
else
  [ -n "$deno_bin" ] || die "no deno binary to put in the image: install Deno $deno_version (npm i -g deno@$deno_version) or set DENO_BIN"
  deno_bin=$(readlink -f "$deno_bin")
  got=$("$deno_bin" --version | head -n1 | awk '{print $2}')
  [ "$got" = "$deno_version" ] || die "$deno_bin is Deno $got, the Dockerfile wants $deno_version: set DENO_BIN or DENO_VERSION"
  ca=/etc/ssl/certs/ca-certificates.crt
  import "$deno_image" ca-certificates,tini \
    'ENV DENO_DIR=/deno-dir DENO_INSTALL_ROOT=/usr/local DENO_CERT=/etc/ssl/build-host-ca.crt' \
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    'ENTRYPOINT ["/tini", "--"]' \
    'CMD ["deno", "repl"]' \
    -- \
    "upload $deno_bin /usr/bin/deno" \
    "upload $ca /etc/ssl/build-host-ca.crt" \
    'chmod 755 "$1"/usr/bin/deno && cp "$1"/usr/bin/tini "$1"/tini' \
    'chroot "$1" sh -c "groupadd -g 1993 deno && useradd -u 1993 -g deno -m -s /bin/bash deno && mkdir -p /deno-dir && chown deno:deno /deno-dir"'
fi

pg_image=postgres:15-bookworm
if have "$pg_image"; then
  say "$pg_image present"
else
  import "$pg_image" postgresql-15,tini \
    'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin PGDATA=/var/lib/postgresql/data' \
    'ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/docker-entrypoint.sh"]' \
    'CMD ["postgres"]' \
    'EXPOSE 5432' \
    -- \
    "upload $here/postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh" \
    'chmod 755 "$1"/usr/local/bin/docker-entrypoint.sh'
fi
