#!/usr/bin/env bash
# Builds slabwatch_VERSION_ARCH.deb into DIR (default .build-package): a release
# binary with the Swift runtime linked statically (a node needs glibc,
# libgcc_s, libyaml and zlib — no Swift; scripts/build-static.sh), the units, the journal catalog, the
# documented default configuration as a conffile, and README. Depends: is what
# dpkg-shlibdeps computes. The maintainer scripts refresh systemd and the
# catalog and never enable or start the service. Prints the .deb's path.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-.build-package}")
version=$(sed -n 's/.*static let version = "\(.*\)"/\1/p' Sources/SlabWatch/Host.swift)
arch=$(dpkg --print-architecture)
name=slabwatch_${version}_${arch}
stage=$out/$name
for tool in dpkg-deb dpkg-shlibdeps; do command -v $tool >/dev/null || { echo "package.sh: needs $tool (apt-get install dpkg-dev)" >&2; exit 1; }; done

binary=$(scripts/build-static.sh)
rm -rf "$stage" && mkdir -p "$stage/DEBIAN"
install -D -m 0755 "$binary" "$stage/usr/bin/slabwatch"
install -d "$stage/usr/lib/systemd/system"
sed 's|/usr/local/bin/slabwatch|/usr/bin/slabwatch|' systemd/slabwatch.service >"$stage/usr/lib/systemd/system/slabwatch.service"
install -m 0644 systemd/slabwatch.socket "$stage/usr/lib/systemd/system/slabwatch.socket"
chmod 0644 "$stage/usr/lib/systemd/system/slabwatch.service"
install -D -m 0644 systemd/slabwatch.catalog "$stage/usr/lib/systemd/catalog/slabwatch.catalog"
install -D -m 0644 config/slabwatch.yml "$stage/etc/slabwatch/slabwatch.yml"
install -D -m 0644 README.md "$stage/usr/share/doc/slabwatch/README.md"
gzip -9n "$stage/usr/share/doc/slabwatch/README.md"
cat >"$stage/usr/share/doc/slabwatch/copyright" <<'COPYRIGHT'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: slabwatch

Files: *
Copyright: 2026 the slabwatch authors
License: Apache-2.0
 On Debian systems, the full text of the Apache License 2.0 can be found in
 /usr/share/common-licenses/Apache-2.0.
COPYRIGHT
printf 'slabwatch (%s) unstable; urgency=medium\n\n  * Package built by scripts/package.sh.\n\n -- slabwatch maintainers <slabwatch@users.noreply.github.com>  %s\n' \
  "$version" "$(date -R -d @"${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")" \
  | gzip -9n >"$stage/usr/share/doc/slabwatch/changelog.gz"

# Depends: from the binary's own shared libraries.
shlib=$(mktemp -d) && trap 'rm -rf "$shlib"' EXIT
mkdir -p "$shlib/debian" && printf 'Source: slabwatch\n' >"$shlib/debian/control"
depends=$(cd "$shlib" && dpkg-shlibdeps -O -e"$stage/usr/bin/slabwatch" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
# Loaded with dlopen when a web configuration asks for TLS or passwords, or
# (libbpf) when a BPF attribution session starts, so dpkg-shlibdeps cannot see
# them. Recommends: a node without them runs everything else, says so at
# start-up if the file needs TLS, and attributes with tracefs without libbpf.
recommends="libssl3, libcrypt1, libbpf1"

echo /etc/slabwatch/slabwatch.yml >"$stage/DEBIAN/conffiles"
cat >"$stage/DEBIAN/control" <<CONTROL
Package: slabwatch
Version: $version
Architecture: $arch
Maintainer: slabwatch maintainers <slabwatch@users.noreply.github.com>
Installed-Size: $(du -sk --exclude=DEBIAN "$stage" | cut -f1)
Depends: $depends
Recommends: $recommends
Section: admin
Priority: optional
Homepage: https://github.com/slabwatch/slabwatch
Description: kernel slab memory monitor with per-file growth detection
 slabwatch samples /proc/slabinfo, /sys/kernel/slab, /proc/meminfo and the VFS
 counters, serves Prometheus metrics and a JSON snapshot, finds slab caches
 whose memory grows linearly with cached inodes, dentries or open files (bytes
 per file), tells a per-inode cache from a leak, and alerts through the
 systemd journal. The service is installed but not enabled or started.
CONTROL
cat >"$stage/DEBIAN/postinst" <<'SCRIPT'
#!/bin/sh
set -e
if [ "$1" = "configure" ]; then
    # Let systemd see the units and journalctl -x explain the alerts; the
    # service is not enabled or started: that is the administrator's call.
    if [ -d /run/systemd/system ]; then systemctl --system daemon-reload >/dev/null || true; fi
    journalctl --update-catalog >/dev/null 2>&1 || true
fi
SCRIPT
cat >"$stage/DEBIAN/prerm" <<'SCRIPT'
#!/bin/sh
set -e
if [ "$1" = "remove" ] && [ -d /run/systemd/system ]; then
    deb-systemd-invoke stop slabwatch.service slabwatch.socket >/dev/null 2>&1 || true
fi
SCRIPT
cat >"$stage/DEBIAN/postrm" <<'SCRIPT'
#!/bin/sh
set -e
if [ "$1" = "remove" ] || [ "$1" = "purge" ]; then
    if [ -d /run/systemd/system ]; then systemctl --system daemon-reload >/dev/null || true; fi
    journalctl --update-catalog >/dev/null 2>&1 || true
fi
if [ "$1" = "purge" ]; then
    # The saved history and findings (StateDirectory=, under /var/lib/private with DynamicUser=).
    rm -rf /var/lib/slabwatch /var/lib/private/slabwatch
fi
SCRIPT
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm" "$stage/DEBIAN/postrm"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$out/$name.deb" >&2
echo "$out/$name.deb"
