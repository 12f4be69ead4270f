#!/usr/bin/env bash
# Builds slabwatch's OCI image from scratch, pulling nothing: the binary of
# scripts/build-static.sh, the shared libraries it links (glibc, libgcc_s,
# zlib, libyaml: as ldd resolves them here, with the dynamic loader), libssl/libcrypto/libcrypt, which it dlopens
# only for TLS and basic auth, and libbpf (with libelf), which it dlopens when a
# BPF attribution session starts. No shell, no package manager, no
# /etc/passwd: the user is numeric (0:0; README, "Running on Kubernetes").
# Usage: scripts/image.sh [OUT]  writes OUT (default .build-image/slabwatch.oci.tar),
# an oci-archive for `podman load`, `skopeo copy` or a registry push. Uses
# Debian's buildah as root, with storage of its own under .build-image, removed
# after. Prints OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v buildah >/dev/null || { echo "image.sh: needs buildah (apt-get install buildah)" >&2; exit 1; }
out=$(realpath -m "${1:-.build-image/slabwatch.oci.tar}")
version=$(sed -n 's/.*static let version = "\(.*\)"/\1/p' Sources/SlabWatch/Host.swift)
binary=$(scripts/build-static.sh)

work=$(mktemp -d "$PWD/.build-image-XXXXXX")
store=(--root "$work/storage" --runroot "$work/run" --storage-driver vfs)
container=
# buildah keeps a blob-info cache in /var/lib/containers/cache whatever --root
# says: leave no such directory behind if there was none.
[ -e /var/lib/containers ] && had_containers_dir=1 || had_containers_dir=0
cleanup() {
  [ -z "$container" ] || buildah "${store[@]}" rm "$container" >/dev/null 2>&1 || true
  buildah "${store[@]}" rmi --all --force >/dev/null 2>&1 || true
  rm -rf "$work"
  [ "$had_containers_dir" = 1 ] || rm -rf /var/lib/containers
}
trap cleanup EXIT

# The root filesystem: each library at the path the loader finds it.
rootfs=$work/rootfs
install -D -m 0755 "$binary" "$rootfs/usr/bin/slabwatch"
libraries=$(ldd "$binary" | awk '/=> \// { print $3 } /^\t\/.*ld-linux/ { print $1 }')
for lib in $(ldconfig -p | awk '/(libssl\.so\.3|libcrypto\.so\.3|libcrypt\.so\.1|libbpf\.so\.1) \(libc6,x86-64\)/ { print $NF }'); do
  libraries+=$'\n'$lib
  libraries+=$'\n'$(ldd "$lib" | awk '/=> \// { print $3 }')
done
for lib in $(sort -u <<<"$libraries"); do
  install -D -m "$(stat -c %a "$(realpath "$lib")")" "$(realpath "$lib")" "$rootfs$lib"  # ld.so must stay executable
done
# Mount points: the runtime's /proc and /sys, the DaemonSet's state directory.
mkdir -p "$rootfs/var/lib/slabwatch" "$rootfs/proc" "$rootfs/sys" "$rootfs/tmp"
chmod 1777 "$rootfs/tmp"

container=$(buildah "${store[@]}" from scratch)
buildah "${store[@]}" copy "$container" "$rootfs" / >/dev/null
buildah "${store[@]}" config \
  --user 0:0 \
  --entrypoint '["/usr/bin/slabwatch"]' \
  --cmd '["--state.directory=/var/lib/slabwatch"]' \
  --port 10077/tcp \
  --label org.opencontainers.image.title=slabwatch \
  --label org.opencontainers.image.version="$version" \
  --label org.opencontainers.image.description="Kernel slab memory monitor with per-file growth detection" \
  --label org.opencontainers.image.licenses=Apache-2.0 \
  --label org.opencontainers.image.revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
  "$container"
mkdir -p "$(dirname "$out")"
rm -f "$out"
buildah "${store[@]}" commit --quiet --format oci --timestamp 0 "$container" "slabwatch:$version" >/dev/null
buildah "${store[@]}" push --quiet "slabwatch:$version" "oci-archive:$out:slabwatch:$version" >/dev/null
echo "$out"
