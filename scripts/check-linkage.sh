#!/usr/bin/env bash
# Checks that the shipped binary was linked as scripts/build-static.sh means
# to: it needs only glibc (libc, libm, the loader), libgcc_s, zlib and libyaml
# (no libstdc++, no libsystemd), its relative
# relocations are packed (DT_RELR, when the toolchain has lld) and it exports
# no symbols; and, given the pid of that binary running as a daemon, that the
# process maps no other file. (Libraries loaded with dlopen for a feature —
# OpenSSL for TLS, libbpf for a BPF session — are mapped only while that
# feature is on: start the daemon without them.)
# Usage: scripts/check-linkage.sh BINARY [PID]. Prints what it checked; exit 1 on a mismatch.
set -euo pipefail
binary=$1 pid=${2:-}
expected='^(libc\.so\.6|libm\.so\.6|libgcc_s\.so\.1|ld-linux-[a-z0-9_-]+\.so\.[0-9]+|libz\.so\.1(\.[0-9.]+)?|libyaml-0\.so\.2(\.[0-9.]+)?)$'
fail() { echo "check-linkage.sh: $*" >&2; exit 1; }

needed=$(readelf -d "$binary" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
unexpected=$(grep -vE "$expected" <<<"$needed" || true)
[ -z "$unexpected" ] || fail "$binary needs $(tr '\n' ' ' <<<"$unexpected")(only libc, libm, the loader, libgcc_s, libz and libyaml are expected)"

swiftc=$(command -v swiftc || true)
if [ -n "$swiftc" ] && [ ! -x "$(dirname "$(realpath "$swiftc")")/ld.lld" ]; then
  echo "check-linkage.sh: no ld.lld in this toolchain, so no packed relocations expected"
else
  readelf -d "$binary" | grep -q '(RELR)' || fail "$binary has no DT_RELR: its relative relocations are not packed"
fi
exported=$(nm -D --defined-only "$binary" 2>/dev/null || true)
[ -z "$exported" ] || fail "$binary exports $(grep -c . <<<"$exported") symbols, e.g. $(head -3 <<<"$exported" | tr '\n' ' ')"
echo "linkage: needs $(paste -sd' ' <<<"$needed"); relocations $(readelf -d "$binary" | grep -q '(RELR)' && echo packed || echo unpacked); no exported symbols"

[ -n "$pid" ] || exit 0
# Every file the process maps: the binary itself, and what the loader mapped for it.
mapped=$(awk '$6 ~ /^\// { print $6 }' "/proc/$pid/maps" | sort -u)
self=$(readlink "/proc/$pid/exe")
others=$(grep -vxF "$self" <<<"$mapped" || true)
unexpected=$(while read -r file; do [ -z "$file" ] || basename "$file"; done <<<"$others" | grep -vE "$expected" || true)
[ -z "$unexpected" ] || fail "the running daemon ($pid) maps $(tr '\n' ' ' <<<"$unexpected")"
echo "linkage: the running daemon maps itself and $(while read -r file; do basename "$file"; done <<<"$others" | paste -sd' ')"
