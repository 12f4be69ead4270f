#!/usr/bin/env bash
# Soak: runs the daemon for SECONDS (default 300) at a 200 ms interval on a fake
# procfs whose cache names churn, with keep-alive clients on every endpoint and
# a SIGHUP every 3 s. Prints resident memory and open descriptors every 10 s and
# fails if either still grows after a warm-up (the first third of the run).
# The daemon checkpoints its state every 5 s into the soak's directory.
# BINARY= picks the binary (default: a debug build of this checkout).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-300}
binary=${BINARY:-}
if [ -z "$binary" ]; then swift build --product slabwatch >/dev/null; binary=.build/debug/slabwatch; fi
root=$(mktemp -d /tmp/slabwatch-soak-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$root"; }
trap cleanup EXIT
mkdir -p "$root/proc/sys/fs" "$root/sys/kernel/slab"
printf 'MemTotal: 16384000 kB\nMemAvailable: 8192000 kB\nSlab: 100000 kB\nSReclaimable: 50000 kB\nSUnreclaim: 50000 kB\n' >"$root/proc/meminfo"
printf '1000 0\n' >"$root/proc/sys/fs/inode-nr"; printf '1000 0 45 0 0 0\n' >"$root/proc/sys/fs/dentry-state"
printf '100 0 1000\n' >"$root/proc/sys/fs/file-nr"

# Cache churn: 200 steady caches plus 50 whose names change every rewrite.
python3 - "$root" <<'PY' &
import os, sys, time
root, n = sys.argv[1], 0
while True:
    lines = ["slabinfo - version: 2.1"] + [f"steady{i} 10 10 64 64 1 : tunables 0 0 0 : slabdata {i+1} {i+1} 0" for i in range(200)]
    lines += [f"module{n}_{i} 10 10 64 64 1 : tunables 0 0 0 : slabdata 3 3 0" for i in range(50)]
    tmp = f"{root}/proc/slabinfo.tmp"
    open(tmp, "w").write("\n".join(lines) + "\n"); os.rename(tmp, f"{root}/proc/slabinfo")
    n += 1; time.sleep(0.2)
PY
pids+=($!)

"$binary" --web.listen-address 127.0.0.1:0 --path.procfs "$root/proc" --path.sysfs "$root/sys" \
  --sampler.interval 200ms --state.directory "$root/state" --state.checkpoint-interval 5s 2>"$root/daemon.log" &
daemon=$!; pids+=($daemon)
port=""
for _ in $(seq 100); do
  port=$(grep -o 'address=127.0.0.1:[0-9]*' "$root/daemon.log" | head -1 | cut -d: -f2 || true)
  [ -n "$port" ] && break; sleep 0.1
done
[ -n "$port" ] || { echo "daemon did not start"; cat "$root/daemon.log"; exit 1; }

# Four keep-alive clients, each cycling through every endpoint on one connection.
for c in 1 2 3 4; do
  python3 - "$port" "$seconds" <<'PY' &
import http.client, sys, time
port, end = int(sys.argv[1]), time.time() + float(sys.argv[2])
paths = ["/metrics", "/snapshot", "/healthz", "/", "/snapshot?slab=steady1&history=3600", "/nope"]
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
i = 0
while time.time() < end:
    try:
        conn.request("GET", paths[i % len(paths)]); conn.getresponse().read(); i += 1
    except Exception:
        conn.close(); conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10); time.sleep(0.1)
print(f"client: {i} requests", file=sys.stderr)
PY
  pids+=($!)
done

rss=(); fds=(); start=$(date +%s)
while [ $(( $(date +%s) - start )) -lt "$seconds" ]; do
  for _ in 1 2 3; do kill -HUP "$daemon"; sleep 3.33; done
  kill -0 "$daemon" 2>/dev/null || { echo "daemon died"; tail "$root/daemon.log"; exit 1; }
  # The floor of five readings 0.2 s apart: a checkpoint holds a copy of the
  # ring while it is written (up to 15 MB at the 2,560-series bound this soak
  # reaches); a leak raises the floor, a checkpoint only a passing peak.
  r=$(for _ in 1 2 3 4 5; do awk '/VmRSS/ {print $2}' "/proc/$daemon/status"; sleep 0.2; done | sort -n | head -1)
  f=$(ls "/proc/$daemon/fd" | wc -l)
  rss+=("$r"); fds+=("$f")
  echo "t=$(( $(date +%s) - start ))s rss=${r}kB fds=$f"
done
requests=$(curl -s "127.0.0.1:$port/metrics" | awk '/^slabwatch_http_requests_total/ {print $2}')
echo "requests served: $requests"
# After warm-up (the first third), neither may keep growing: the last reading
# may not exceed the largest reading of the middle third by more than 5 % (RSS) or 2 (fds).
n=${#rss[@]}; a=$(( n / 3 )); b=$(( 2 * n / 3 ))
(( n >= 3 )) || { echo "run too short to judge"; exit 0; }
mid_rss=0; mid_fds=0
for ((i = a; i < b || i == a; i++)); do
  (( rss[i] > mid_rss )) && mid_rss=${rss[i]}; (( fds[i] > mid_fds )) && mid_fds=${fds[i]}
done
last_rss=${rss[n-1]}; last_fds=${fds[n-1]}
echo "middle third max: rss=${mid_rss}kB fds=$mid_fds; last: rss=${last_rss}kB fds=$last_fds"
if (( last_rss * 100 > mid_rss * 105 )) || (( last_fds > mid_fds + 2 )); then
  echo "FAIL: still growing after warm-up"; exit 1
fi
echo "OK: flat after warm-up"
