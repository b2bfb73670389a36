#!/usr/bin/env bash
# The clients' image, made offline: a busybox-static rootfs (examples/make-bundle.ts) imported into
# podman's store as localhost/xc-busybox:latest. A no-op when it exists.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
image=localhost/xc-busybox:latest
podman image exists "$image" && exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$here" && node_modules/.bin/tsx examples/make-bundle.ts "$tmp/b" >/dev/null)
tar -C "$tmp/b/rootfs" -cf "$tmp/rootfs.tar" .
podman import -q "$tmp/rootfs.tar" "$image" >/dev/null
