#!/usr/bin/env bash
# Builds the .deb, checks it with lintian, installs it with dpkg, runs the
# installed binary with an empty environment (no Swift anywhere) against the
# live kernel, verifies the installed units with systemd-analyze, then purges
# it and checks that nothing is left. Refuses to run if slabwatch is installed
# already (it would be removed). Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
if dpkg -s slabwatch >/dev/null 2>&1; then echo "test-package.sh: slabwatch is installed already; not touching it" >&2; exit 1; fi
deb=$(scripts/package.sh)
echo "built $deb ($(du -h "$deb" | cut -f1)); binary $(du -h .build-package/*/usr/bin/slabwatch | cut -f1)"
# Depends: what the binary needs (check-linkage.sh below), nothing the build linked in.
depends=$(dpkg-deb -f "$deb" Depends)
unexpected=$(tr ',' '\n' <<<"$depends" | sed 's/^ *//; s/ .*//' | grep -vxE 'libc6|libgcc-s1|zlib1g|libyaml-0-2' || true)
[ -z "$unexpected" ] || { echo "Depends: $depends; only libc6, libgcc-s1, zlib1g and libyaml-0-2 expected"; exit 1; }

# lintian must be clean but for tags accepted here, each for a reason:
#  no-manual-page   `slabwatch --help`, `slabwatch COMMAND --help` and README are its manual
allowed='no-manual-page'
# lintian leaves mldbm-elf-* files in its TMPDIR: give it one of ours, removed after.
lintian_tmp=$(mktemp -d)
tags=$(TMPDIR=$lintian_tmp lintian --no-tag-display-limit "$deb" 2>&1 | grep -E '^[EW]: ' || true)
rm -rf "$lintian_tmp"
unexpected=$(grep -vE "($allowed)" <<<"$tags" || true)
echo "lintian: $(grep -c . <<<"$tags" || true) tags; unexpected: ${unexpected:-none}"
[ -z "$unexpected" ] || { echo "$tags"; exit 1; }

before=$(mktemp); after=$(mktemp); log=$(mktemp); daemon=
trap '[ -z "$daemon" ] || kill $daemon 2>/dev/null; rm -f "$before" "$after" "$log"' EXIT
stamp=/run/systemd/systemd-units-load; [ -e $stamp ] && stamp_existed=1 || stamp_existed=0
find /etc /usr/bin /usr/lib/systemd /usr/share/doc /var/lib/dpkg/info -xdev 2>/dev/null | sort >"$before"
dpkg -i "$deb" >/dev/null
for f in /usr/bin/slabwatch /usr/lib/systemd/system/slabwatch.service /usr/lib/systemd/system/slabwatch.socket \
         /usr/lib/systemd/catalog/slabwatch.catalog /etc/slabwatch/slabwatch.yml /usr/share/doc/slabwatch/copyright; do
  [ -e "$f" ] || { echo "missing after install: $f"; exit 1; }
done
systemctl is-enabled slabwatch.service >/dev/null 2>&1 && { echo "the package enabled the service"; exit 1; }
# No Swift on PATH or in LD_LIBRARY_PATH: the binary must run on a node without a toolchain.
env -i /usr/bin/slabwatch --version
env -i /usr/bin/slabwatch check-config /etc/slabwatch/slabwatch.yml
env -i /usr/bin/slabwatch snapshot | head -c 120; echo
if ldd /usr/bin/slabwatch | grep -q swift; then echo "the installed binary links the Swift runtime dynamically"; exit 1; fi
# As a daemon, scraped once with gzip: it needs and maps glibc, libgcc_s, zlib and libyaml, nothing else.
env -i /usr/bin/slabwatch --web.listen-address 127.0.0.1:0 --state.directory "" 2>"$log" & daemon=$!
scraped=0
for _ in $(seq 100); do
  port=$(sed -n 's/.*msg=listening.*address=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -1)
  [ -n "$port" ] && curl -sf --max-time 2 --compressed "http://127.0.0.1:$port/metrics" >/dev/null && { scraped=1; break; }
  kill -0 $daemon 2>/dev/null || break
  sleep 0.1
done
[ $scraped = 1 ] || { echo "the installed daemon did not serve /metrics:"; cat "$log"; exit 1; }
scripts/check-linkage.sh /usr/bin/slabwatch $daemon
kill $daemon; wait $daemon || true; daemon=
systemd-analyze verify /usr/lib/systemd/system/slabwatch.service /usr/lib/systemd/system/slabwatch.socket
dpkg --purge slabwatch >/dev/null
[ $stamp_existed = 1 ] || rm -f $stamp  # systemd-analyze's stamp, if it left one
find /etc /usr/bin /usr/lib/systemd /usr/share/doc /var/lib/dpkg/info -xdev 2>/dev/null | sort >"$after"
leftovers=$(comm -13 "$before" "$after")
[ -z "$leftovers" ] || { echo "left behind after purge:"; echo "$leftovers"; exit 1; }
echo "package: installed, ran without Swift, units verified, purged without leftovers"
