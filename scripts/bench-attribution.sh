#!/usr/bin/env bash
# What attributing a fast-growing cache costs, side by side in one run: a
# workload creates FILES tmpfs files as fast as it can and deletes every third
# (so the true net is two thirds of them), while
#   - nothing traces,
#   - `slabwatch attribute shmem_inode_cache --source bpf`,
#   - `slabwatch attribute shmem_inode_cache --source trace` (tracefs, streamed),
#   - the bpftrace one-liner an engineer would type instead.
# For each: the workload's create rate (median of ROUNDS, interleaved), the
# allocations each tracer counted against the workload's true count, and the
# net it reports against the true net (bpftrace gives no net).
# Needs root, a C compiler, bpftrace. Usage: scripts/bench-attribution.sh [ROUNDS] [FILES]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
files=${2:-300000}
for tool in cc bpftrace python3; do command -v $tool >/dev/null || { echo "bench-attribution.sh: needs $tool" >&2; exit 1; }; done
if [ -z "${SLABWATCH:-}" ]; then
  swift build -c release --product slabwatch >/dev/null
  SLABWATCH=.build/release/slabwatch
fi

work=$(mktemp -d)
mnt="$work/mnt"; mkdir "$mnt"
tracer=""
# bpftrace finds tracepoints in tracefs (slabwatch mounts it itself when it
# must): mount it for the run when it is not, and unmount only that.
mounted_tracefs=""
if [ ! -d /sys/kernel/tracing/events ] && [ ! -d /sys/kernel/debug/tracing/events ]; then
  mount -t tracefs nodev /sys/kernel/tracing && mounted_tracefs=yes
fi
cleanup() {
  [ -z "$tracer" ] || kill -INT "$tracer" 2>/dev/null || true
  wait 2>/dev/null || true
  if mountpoint -q "$mnt"; then umount "$mnt"; fi
  if [ -n "$mounted_tracefs" ]; then umount /sys/kernel/tracing; fi
  rm -rf "$work"
}
trap cleanup EXIT

# The workload: creates FILES empty files, then unlinks every third, and
# prints its create rate (files/s). Empty files cost one shmem inode each.
cat >"$work/churn.c" <<'EOF'
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(int argc, char **argv) {
    long n = atol(argv[2]);
    char path[4096];
    double start = now();
    for (long i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/f%ld", argv[1], i);
        int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        if (fd < 0) { perror(path); return 1; }
        close(fd);
    }
    double created = now() - start;
    for (long i = 0; i < n; i += 3) {
        snprintf(path, sizeof path, "%s/f%ld", argv[1], i);
        if (unlink(path) != 0) { perror(path); return 1; }
    }
    printf("%.0f\n", n / created);
    return 0;
}
EOF
cc -O2 -o "$work/churn" "$work/churn.c"
deleted=$(( (files + 2) / 3 ))
true_net=$(( files - deleted ))

# start_tracer KIND OUTPUT: starts it in the background, waits until it traces.
start_tracer() {
  case $1 in
    none) tracer=""; return ;;
    bpf|trace) "$SLABWATCH" attribute shmem_inode_cache --source "$1" --duration 10m --max-events 100000000 --json >"$2" 2>"$2.err" & ;;
    bpftrace) bpftrace -e 'tracepoint:kmem:kmem_cache_alloc /str(args->name) == "shmem_inode_cache"/ { @[kstack(8)] = count(); }' >"$2" 2>"$2.err" & ;;
  esac
  tracer=$!
  # Neither prints when it is attached in a way both share; both set up
  # within a second here (bpftrace says "Attaching 1 probe..." when it is).
  for _ in $(seq 50); do
    if [ "$1" = bpftrace ]; then grep -q Attaching "$2" 2>/dev/null && break; fi
    sleep 0.1
  done
  sleep 1
}

stop_tracer() {
  [ -n "$tracer" ] || return 0
  sleep 1   # the deletions' RCU-deferred frees land before the session ends
  kill -INT "$tracer"; wait "$tracer" || true; tracer=""
}

# counted KIND OUTPUT → "allocations net" (net "-" where the tracer gives none)
counted() {
  case $1 in
    none) echo "- -" ;;
    bpf|trace) python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
sites = r["call_sites"]
print(sum(s["allocations"] for s in sites), sum(s["net_count"] for s in sites))' "$2" ;;
    bpftrace) awk '/^\]: / {s += $2} END {print s + 0, "-"}' "$2" ;;
  esac
}

read -r -a kinds <<<"${KINDS:-none bpf trace bpftrace}"  # a subset: KINDS="none bpftrace"
declare -A rates allocs nets
for round in $(seq "$rounds"); do
  for kind in "${kinds[@]}"; do
    mount -t tmpfs -o size=1g,nr_inodes=0 slabwatch-bench "$mnt"
    out="$work/$kind.$round"
    start_tracer "$kind" "$out"
    rate=$("$work/churn" "$mnt" "$files")
    stop_tracer
    umount "$mnt"
    read -r a n < <(counted "$kind" "$out")
    rates[$kind]+="$rate "; allocs[$kind]+="$a "; nets[$kind]+="$n "
    echo "round $round $kind: $rate files/s, counted $a of $files allocations, net $n of $true_net" >&2
  done
done

median() { tr ' ' '\n' | { grep -v '^-\?$' || true; } | sort -n | awk '{v[NR] = $1} END {if (NR == 0) print "-"; else print v[int((NR + 1) / 2)]}'; }
base=$(median <<<"${rates[none]}")
printf '| %s files created flat out, %s deleted (median of %s) | files/s | workload speed kept | allocations counted | net (true %s) |\n|---|---|---|---|---|\n' \
  "$files" "$deleted" "$rounds" "$true_net"
for kind in "${kinds[@]}"; do
  r=$(median <<<"${rates[$kind]}"); a=$(median <<<"${allocs[$kind]}"); n=$(median <<<"${nets[$kind]}")
  kept=$(awk -v r="$r" -v b="$base" 'BEGIN {printf "%.0f %%", 100 * r / b}')
  counted_share=$([ "$a" = - ] && echo – || awk -v a="$a" -v f="$files" 'BEGIN {printf "%.1f %%", 100 * a / f}')
  net_error=$([ "$n" = - ] && echo – || awk -v n="$n" -v t="$true_net" 'BEGIN {printf "%s (%+.1f %%)", n, 100 * (n - t) / t}')
  case $kind in none) label="nothing tracing" ;; bpf) label="slabwatch attribute --source bpf" ;;
    trace) label="slabwatch attribute --source trace" ;; bpftrace) label="bpftrace one-liner (kstack(8), count)" ;; esac
  printf '| %s | %s | %s | %s | %s |\n' "$label" "$r" "$kept" "$counted_share" "$net_error"
done
