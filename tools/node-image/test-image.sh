#!/usr/bin/env bash
# Makes a one-layer image archive (docker-archive format, which `ctr images import` reads)
# of Debian's static busybox, for proving a node's containerd and runc without the
# Kubernetes images: tag g8s.local/test/busybox:1, command /bin/sh.
#
# Usage: test-image.sh OUT.tar      (needs apt access to deb.debian.org for busybox-static)
set -euo pipefail

out="${1:?usage: test-image.sh OUT.tar}"
TAG="g8s.local/test/busybox:1"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

(cd "$work" && apt-get download -q busybox-static >/dev/null)
mkdir -p "$work/root/bin" "$work/image"
dpkg-deb -x "$work"/busybox-static_*.deb "$work/deb"
cp "$work/deb/bin/busybox" "$work/root/bin/busybox"
for applet in sh echo cat hostname sleep ls; do ln -s busybox "$work/root/bin/$applet"; done
# Fixed owners and times, sorted names: the same busybox gives the same layer digest.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$work/root" -cf "$work/image/layer.tar" .
diff_id="sha256:$(sha256sum <"$work/image/layer.tar" | cut -d' ' -f1)"
printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":["%s"]}}' \
  "$diff_id" >"$work/image/config.json"
printf '[{"Config":"config.json","RepoTags":["%s"],"Layers":["layer.tar"]}]' "$TAG" >"$work/image/manifest.json"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$work/image" -cf "$out" manifest.json config.json layer.tar
echo "$out: $TAG ($diff_id)"
