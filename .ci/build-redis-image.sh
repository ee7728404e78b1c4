#!/usr/bin/env bash
# Builds a local Docker image holding this machine's redis-server and the libraries it links,
# for machines where no image registry is reachable: `docker import` of a minimal root filesystem.
# The binary is redis-server on PATH, else the valkey-server of the pinned pip package (dev extra),
# installed in the image as redis-server.
# Usage: .ci/build-redis-image.sh [image-name]   (default livermore-redis:local)
set -euo pipefail
image="${1:-livermore-redis:local}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
if ! binary="$(command -v redis-server)"; then
  binary="$(cd "$repo" && "${VENV:-.venv}/bin/python" -m tools.servers binary valkey-9)" \
    || { echo "no redis-server on PATH and no pip-shipped server (make install)" >&2; exit 1; }
fi
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT

mkdir -p "$root/usr/local/bin" "$root/tmp" "$root/data"
chmod 1777 "$root/tmp"
cp -L "$binary" "$root/usr/local/bin/redis-server"
# the dynamic loader and every shared library the binary links
for lib in $(ldd "$binary" | grep -o '/[^ ]*'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
  --change 'WORKDIR /data' \
  --change 'CMD ["redis-server"]' \
  - "$image" >/dev/null
echo "built $image from $binary ($("$binary" --version | grep -o 'v=[^ ]*'))"
