#!/usr/bin/env bash
# A finding in about two minutes, on this machine's kernel: mounts a scratch
# tmpfs, starts slabwatch on a free loopback port with short detector windows
# (it keeps no state and sends no alert to the journal), gives 60,000 files a
# 400-byte user xattr each (the xattrs land in a kmalloc-cg-* cache, per
# inode), prints the finding's sentence and top's screen, deletes the files
# and prints what the finding says then. Everything it made is removed at the
# end, however it ends: the daemon (by its pid), the mount, the directory.
#
# Usage: sudo scripts/demo.sh   (root: it mounts a tmpfs and reads /proc/slabinfo)
# SLABWATCH=PATH runs that binary instead of building scripts/build-static.sh's.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo: run as root (it mounts a tmpfs and reads /proc/slabinfo)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "demo: needs python3" >&2; exit 2; }
slabwatch=${SLABWATCH:-$(scripts/build-static.sh)}
files=${DEMO_FILES:-60000}

say() { printf '\ndemo: %s\n' "$*"; }

scratch=$(mktemp -d "${TMPDIR:-/tmp}/slabwatch-demo.XXXXXX")
daemon=
cleanup() {
  [ -n "$daemon" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true
  mountpoint -q "$scratch/files" && umount "$scratch/files"
  rm -rf "$scratch"
  echo "demo: cleaned up (daemon stopped, tmpfs unmounted, $scratch removed)"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir "$scratch/files"
mount -t tmpfs -o size=256m,mode=0700 slabwatch-demo "$scratch/files"

# Short windows so a finding opens in seconds, not the defaults' minutes.
"$slabwatch" --web.listen-address 127.0.0.1:0 --state.directory "" \
  --alerts.journal-socket "$scratch/no-journal" --sampler.interval 250ms \
  --detector.windows 20s --detector.min-growth-bytes 8MiB --detector.min-driver-change 5000 \
  --detector.open-after 2 --detector.hold-after 20s --detector.leak-grace 60s \
  2>"$scratch/daemon.log" &
daemon=$!
echo "demo: scratch $scratch, daemon pid $daemon"

# The port the daemon chose, from its log.
for _ in $(seq 200); do
  port=$(grep -o 'address=127\.0\.0\.1:[0-9]*' "$scratch/daemon.log" | head -1 | cut -d: -f2 || true)
  [ -n "$port" ] && break
  kill -0 "$daemon" 2>/dev/null || { cat "$scratch/daemon.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { echo "demo: the daemon did not say where it listens" >&2; exit 1; }
url=http://127.0.0.1:$port

# The finding of a kmalloc-cg-* cache from /snapshot, as one field: its
# sentence, or its classification; empty while there is none.
finding() {
  python3 - "$url/snapshot" "$1" <<'EOF'
import json, sys, urllib.request
snapshot = json.load(urllib.request.urlopen(sys.argv[1], timeout=10))
for f in snapshot["findings"]:
    if f["slab"].startswith("kmalloc-cg-") and f["driver"] == "inodes":
        print(f[sys.argv[2]])
        break
EOF
}

# wait_for SECONDS CONDITION...: true once the condition holds, false after SECONDS.
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    [ $SECONDS -lt $deadline ] || return 1
    kill -0 "$daemon" 2>/dev/null || { cat "$scratch/daemon.log" >&2; exit 1; }
    sleep 1
  done
}
opened() { [ -n "$(finding message)" ]; }
classified() { [ "$(finding classification)" = tracks-eviction ]; }

say "a quiet baseline of 5 s at $url"
sleep 5

say "giving $files files on the tmpfs a 400-byte user xattr each"
python3 - "$scratch/files" "$files" <<'EOF'
import os, sys
directory, count = sys.argv[1], int(sys.argv[2])
value = b"x" * 400
for i in range(count):
    path = os.path.join(directory, "f%d" % i)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    os.setxattr(path, "user.demo", value)
EOF

say "waiting for the finding (the detector needs a few passing evaluations)"
wait_for 90 opened || { echo "demo: no finding within 90 s; the daemon's log:" >&2; cat "$scratch/daemon.log" >&2; exit 1; }
echo
finding message

say "slabwatch top --url $url --once"
"$slabwatch" top --url "$url" --once >"$scratch/top.txt"
head -12 "$scratch/top.txt"

say "deleting the files: a per-inode cache falls with them, a leak would not"
find "$scratch/files" -mindepth 1 -delete
if wait_for 60 classified; then
  echo
  finding message
else
  say "not classified yet (the cache has not followed within 60 s); it says:"
  finding message
fi
