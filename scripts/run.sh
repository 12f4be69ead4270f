#!/usr/bin/env bash
# Builds slabwatch with the Swift runtime linked in (installing libyaml-dev, zlib1g-dev, libssl-dev, libcrypt-dev and
# pkg-config if missing: OpenSSL's headers are needed to build, its library only for TLS) and runs
# the daemon on its embedded defaults; extra arguments go to slabwatch.
# Run as root, or with CAP_DAC_READ_SEARCH, so /proc/slabinfo is readable.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! { command -v pkg-config >/dev/null && pkg-config --exists yaml-0.1 zlib openssl libcrypt; }; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libyaml-dev zlib1g-dev \
    libssl-dev libcrypt-dev pkg-config >/dev/null
fi
# The same binary the .deb and the OCI image ship (scripts/build-static.sh), so
# what a new user measures here is what a node runs.
binary=$(scripts/build-static.sh)
echo "run.sh: running $binary" >&2
exec "$binary" "$@"
