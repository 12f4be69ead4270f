#!/usr/bin/env bash
# Builds the OCI image (scripts/image.sh), unpacks it, checks what it holds,
# and proves it runs on nothing but its own files: its entrypoint and command,
# chrooted into its root filesystem (read-only), with /proc and a read-only
# /sys mounted as a container runtime mounts them, in a mount namespace of its own
# (podman's crun cannot set rlimits in some sandboxes; a chroot needs nothing).
# Scrapes it on loopback and stops it. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
pid=
cleanup() {
  [ -z "$pid" ] || { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  rm -rf "$tmp"
}
trap cleanup EXIT

image=$(scripts/image.sh "$tmp/slabwatch.oci.tar")
echo "built $(basename "$image") ($(du -h "$image" | cut -f1))"
mkdir "$tmp/oci" "$tmp/rootfs"
tar -xf "$image" -C "$tmp/oci"
# index → manifest → config and layers, as a runtime reads them.
python3 - "$tmp/oci" >"$tmp/image.env" <<'PY'
import json, sys
oci = sys.argv[1]
blob = lambda digest: f"{oci}/blobs/{digest.replace(':', '/')}"
index = json.load(open(f"{oci}/index.json"))
manifest = json.load(open(blob(index["manifests"][0]["digest"])))
config = json.load(open(blob(manifest["config"]["digest"])))["config"]
print("layers='%s'" % " ".join(blob(layer["digest"]) for layer in manifest["layers"]))
print("user='%s'" % config.get("User", ""))
print("command='%s'" % json.dumps(config.get("Entrypoint", []) + config.get("Cmd", [])))
print("version='%s'" % config.get("Labels", {}).get("org.opencontainers.image.version", ""))
PY
. "$tmp/image.env"
for layer in $layers; do tar -xf "$layer" -C "$tmp/rootfs"; done
expected_version=$(sed -n 's/.*static let version = "\(.*\)"/\1/p' Sources/SlabWatch/Host.swift)
[ "$version" = "$expected_version" ] || { echo "image label version '$version', expected '$expected_version'"; exit 1; }
[ "$user" = "0:0" ] || { echo "image user '$user', expected 0:0"; exit 1; }
# One binary everywhere: the image's is byte for byte the one run.sh runs (and the .deb's, when built).
cmp "$tmp/rootfs/usr/bin/slabwatch" .build-static/slabwatch
for deb_binary in .build-package/slabwatch_*/usr/bin/slabwatch; do
  [ ! -e "$deb_binary" ] || cmp "$tmp/rootfs/usr/bin/slabwatch" "$deb_binary"
done
files=$(cd "$tmp/rootfs" && find . -type f | sort)
echo "image holds $(grep -c . <<<"$files") files, $(du -sh "$tmp/rootfs" | cut -f1): $(tr '\n' ' ' <<<"$files")"
unexpected=$(grep -vE '^\./usr/bin/slabwatch$|^\./(usr/)?lib(64)?/.*\.so(\.[0-9]+)*$' <<<"$files" || true)
[ -z "$unexpected" ] || { echo "unexpected files in the image: $unexpected"; exit 1; }

# What TLS, basic auth and a BPF session dlopen resolves inside the image alone (no ld.so.cache there).
for lib in libssl.so.3 libcrypt.so.1 libbpf.so.1; do
  resolved=$(chroot "$tmp/rootfs" /lib64/ld-linux-x86-64.so.2 --list "/lib/x86_64-linux-gnu/$lib" 2>&1) \
    && ! grep -q 'not found' <<<"$resolved" || { echo "$lib does not load in the image: $resolved"; exit 1; }
done

# The entrypoint and command from the image's config, plus a loopback port.
mapfile -t argv < <(python3 -c 'import json, sys; print("\n".join(json.loads(sys.argv[1])))' "$command")
root=$tmp/rootfs
unshare --mount --propagation private /bin/sh -c '
  root=$1; shift
  mount --bind "$root" "$root" && mount -o remount,bind,ro "$root"
  mount --bind /proc "$root/proc" && mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys"
  mount -t tmpfs -o size=16m slabwatch-state "$root/var/lib/slabwatch"
  exec chroot "$root" "$@"' sh "$root" "${argv[@]}" --web.listen-address 127.0.0.1:0 2>"$tmp/log" &
pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's/.*msg=listening.*address=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/log" | head -1)
  [ -n "$port" ] && curl -sf --max-time 2 "http://127.0.0.1:$port/healthz" >/dev/null && break
  kill -0 "$pid" 2>/dev/null || { echo "the image's entrypoint exited:"; cat "$tmp/log"; exit 1; }
  sleep 0.1
done
metrics=$(curl -sS --max-time 5 "http://127.0.0.1:$port/metrics")
# What it needs and maps: glibc, libgcc_s, zlib and libyaml from the image, nothing else (no TLS configured).
scripts/check-linkage.sh "$tmp/rootfs/usr/bin/slabwatch" "$pid"
for want in 'slabwatch_source_up{source="slabinfo"} 1' 'slabwatch_source_up{source="sysfs_slab"} 1' \
            'slabwatch_state_enabled 1' "slabwatch_build_info{version=\"$version\"} 1"; do
  grep -qF "$want" <<<"$metrics" || { echo "the image's daemon lacks: $want"; cat "$tmp/log"; exit 1; }
done
echo "image runs chrooted: $(grep -c '^slabwatch_slab_footprint_bytes' <<<"$metrics") caches exported from its /proc, state kept, port $port"
kill "$pid"; wait "$pid" || true; pid=
grep -q 'msg=stopped' "$tmp/log" || { echo "no clean stop:"; cat "$tmp/log"; exit 1; }

# A BPF attribution session, as the attribution overlay runs one, from the
# image alone: libbpf is loaded from it, and the program from the binary.
if [ -e /sys/kernel/btf/vmlinux ]; then
  session=$(unshare --mount --propagation private /bin/sh -c '
    root=$1; shift
    mount --bind "$root" "$root" && mount -o remount,bind,ro "$root"
    mount --bind /proc "$root/proc" && mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys"
    exec chroot "$root" /usr/bin/slabwatch attribute dentry --source bpf --duration 1s --json' sh "$root" 2>&1) \
    && grep -q '"source":"bpf"' <<<"$session" \
    || { echo "no BPF session from the image: $session"; exit 1; }
  echo "image runs a BPF attribution session"
fi
echo "test-image.sh: the image runs on its own files"
