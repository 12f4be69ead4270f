#!/usr/bin/env bash
# Builds the one slabwatch binary that scripts/run.sh runs, the .deb ships and
# the OCI image contains: release, the Swift runtime linked in
# (--static-swift-stdlib; a node needs glibc, libsystemd, libyaml and zlib, no
# Swift), stripped. Prints its path: .build-static/slabwatch.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product slabwatch --static-swift-stdlib --scratch-path .build-static >&2
binary=$PWD/.build-static/slabwatch
if [ ! -e "$binary" ] || [ .build-static/release/slabwatch -nt "$binary" ]; then
  install -m 0755 .build-static/release/slabwatch "$binary.tmp"
  strip --strip-unneeded --remove-section=.comment --remove-section=.note "$binary.tmp"
  mv "$binary.tmp" "$binary"
fi
echo "$binary"
