#!/usr/bin/env bash
# Builds slabwatch and installs it with its units, default configuration and
# journal catalog:  scripts/install.sh            (PREFIX=/usr/local)
#                   scripts/install.sh uninstall
# DESTDIR=… stages the files for packaging; then nothing is reloaded.
# BINARY=path installs an already built binary instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
bin=$DESTDIR$PREFIX/bin
units=$DESTDIR$PREFIX/lib/systemd/system
catalog=$DESTDIR$PREFIX/lib/systemd/catalog
doc=$DESTDIR$PREFIX/share/doc/slabwatch
etc=$DESTDIR/etc/slabwatch

live() { [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; }

if [ "${1:-install}" = uninstall ]; then
  live && systemctl disable --now slabwatch.socket slabwatch.service 2>/dev/null || true
  rm -f "$bin/slabwatch" "$units/slabwatch.service" "$units/slabwatch.socket" "$catalog/slabwatch.catalog"
  rm -rf "$doc"
  # The configuration may hold local edits: removed only when it is the shipped one.
  if [ -f "$etc/slabwatch.yml" ] && cmp -s config/slabwatch.yml "$etc/slabwatch.yml"; then
    rm -f "$etc/slabwatch.yml"; rmdir "$etc" 2>/dev/null || true
  fi
  if [ -z "$DESTDIR" ]; then journalctl --update-catalog 2>/dev/null || true; fi
  live && systemctl daemon-reload || true
  echo "slabwatch uninstalled"
  exit 0
fi

if [ -z "${BINARY:-}" ]; then
  command -v pkg-config >/dev/null && pkg-config --exists yaml-0.1 zlib openssl libcrypt || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libyaml-dev zlib1g-dev \
      libssl-dev libcrypt-dev pkg-config >/dev/null
  }
  swift build -c release --product slabwatch
  BINARY=.build/release/slabwatch
fi
install -D -m 0755 "$BINARY" "$bin/slabwatch"
sed "s|/usr/local/bin/slabwatch|$PREFIX/bin/slabwatch|" systemd/slabwatch.service > /tmp/slabwatch.service.$$
install -D -m 0644 /tmp/slabwatch.service.$$ "$units/slabwatch.service"
rm -f /tmp/slabwatch.service.$$
install -D -m 0644 systemd/slabwatch.socket "$units/slabwatch.socket"
install -D -m 0644 systemd/slabwatch.catalog "$catalog/slabwatch.catalog"
install -D -m 0644 README.md "$doc/README.md"
install -D -m 0644 LICENSE "$doc/LICENSE"
install -D -m 0644 CHANGES.md "$doc/CHANGES.md"
# README's links lead into docs/: the same tree beside it.
find docs -name '*.md' -exec install -D -m 0644 {} "$doc/{}" \;
# Not active where it is: copied into slabwatch.service.d by an operator who
# wants the daemon to trace (docs/attribution.md).
sed "s|/usr/local/bin/slabwatch|$PREFIX/bin/slabwatch|" systemd/slabwatch-attribution.conf > /tmp/slabwatch-attribution.conf.$$
install -D -m 0644 /tmp/slabwatch-attribution.conf.$$ "$doc/slabwatch-attribution.conf"
rm -f /tmp/slabwatch-attribution.conf.$$
[ -f "$etc/slabwatch.yml" ] || install -D -m 0644 config/slabwatch.yml "$etc/slabwatch.yml"
if [ -z "$DESTDIR" ]; then journalctl --update-catalog; fi
live && systemctl daemon-reload || true
echo "slabwatch installed into $PREFIX; start it with: systemctl enable --now slabwatch.service"
