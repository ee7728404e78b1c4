#!/usr/bin/env bash
# Makes a Docker engine answer on this machine and builds the local Redis image the tests run in.
# Exit 0: engine up and image built. Exit 1: it could not be done; the reason is printed.
set -uo pipefail
image="${1:-livermore-redis:local}"
here="$(cd "$(dirname "$0")" && pwd)"

fail() { echo "docker: $*" >&2; exit 1; }

if ! command -v dockerd >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || fail "dockerd is not installed and installing it needs root"
  echo "installing Debian's docker.io"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io) >/tmp/livermore-docker-install.log 2>&1 \
    || fail "apt-get install docker.io failed: $(tail -3 /tmp/livermore-docker-install.log)"
fi

if ! docker info >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || fail "no engine answers and starting dockerd needs root"
  echo "starting dockerd (no bridge, no iptables: containers use the host's loopback)"
  nohup dockerd --bridge=none --iptables=false >/tmp/livermore-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || fail "dockerd did not answer within 60 s: $(tail -3 /tmp/livermore-dockerd.log)"
fi

"$here/build-redis-image.sh" "$image" || fail "building $image failed"
docker run --rm --network host "$image" redis-server --version >/dev/null || fail "$image does not run"
