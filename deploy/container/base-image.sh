#!/usr/bin/env bash
# Build the Dockerfile's base image from Debian packages, for a machine that reaches Debian's
# archive but no container registry (`make container-test` calls it). The image gets the exact
# name the Dockerfile's FROM uses, so the same Dockerfile builds from the public image anywhere
# else. Cached twice: the image stays in podman's storage, and the root filesystem tarball in
# ~/.cache/routectl, so a wiped storage re-imports in seconds instead of re-bootstrapping.
#
#   deploy/container/base-image.sh IMAGE PODMAN...     e.g. docker.io/library/python:3.11-slim-bookworm
set -euo pipefail

image="$1"; shift
podman=("$@")
suite=bookworm
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if "${podman[@]}" image exists "$image"; then
  echo "base image $image: cached in podman's storage"
  exit 0
fi

cache="${XDG_CACHE_HOME:-$HOME/.cache}/routectl"
tarball="$cache/$(printf '%s' "$image" | tr '/:' '__').tar"
if [ ! -s "$tarball" ]; then
  command -v debootstrap >/dev/null || { echo "base-image: debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }
  root=$(mktemp -d /var/tmp/routectl-rootfs.XXXXXX)
  chmod 755 "$root"  # it becomes the image's /: mktemp's 0700 would lock out every other user
  trap 'rm -rf "$root"' EXIT
  echo "base image $image: bootstrapping Debian $suite with python3 into $root (a few minutes)"
  # python3-venv: the build stage makes its virtual environment with it (ensurepip)
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$suite" "$root" "$mirror" >"$root.log" 2>&1 || { tail -20 "$root.log" >&2; exit 1; }
  rm -f "$root.log"
  cat >"$root/etc/apt/sources.list" <<SOURCES
deb $mirror $suite main
deb $mirror $suite-updates main
deb http://deb.debian.org/debian-security $suite-security main
SOURCES
  # the security and point-release updates the public image also carries
  chroot "$root" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get upgrade -y -qq >/dev/null
  chroot "$root" apt-get clean
  # what a slim image leaves out: package lists, documentation, manual pages, translations
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/* \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
    "$root"/usr/share/locale/* "$root"/tmp/* "$root"/root/.cache
  ln -sf python3 "$root/usr/bin/python"  # as in the public image
  mkdir -p "$cache"
  tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
fi
"${podman[@]}" import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' "$tarball" "$image" >/dev/null
echo "base image $image: imported from $tarball"
