#!/usr/bin/env bash
# slabwatch beside node_exporter (slabinfo, meminfo and filefd collectors) in
# one run on this machine: idle resident memory, CPU per sample with nobody
# scraping (against a process that only reads the same files at the same
# pace, and against the reads' own cost inside the bench), CPU per
# scrape and throughput under wrk, and resident memory after a minute of it;
# the same with 1,000 memory cgroups to walk (a cgroup v2 fixture tree); then
# both again behind the same web configuration file (TLS + basic auth).
# Needs root, wrk and prometheus-node-exporter. SECONDS of wrk (default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
for tool in wrk prometheus-node-exporter openssl; do command -v $tool >/dev/null || { echo "compare.sh: needs $tool" >&2; exit 1; }; done
sw_bin=$(scripts/build-static.sh 2>/dev/null)  # the binary the .deb and the image ship
swift build -c release --product slabwatch-bench >/dev/null
pids=(); state=""; pki=""; cgroups=""
groups=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; for g in "${groups[@]}"; do rmdir "$g" 2>/dev/null || true; done
      for d in "$state" "$pki" "$cgroups"; do [ -z "$d" ] || rm -rf "$d"; done' EXIT
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }   # clock ticks
# CPU of a process in nanoseconds, exited threads included: from the
# cpu.stat of a cgroup v2 directory of its own (there without the cpu
# controller), else the live threads' schedstat (a thread that exits takes
# its time with it). /proc/PID/stat's clock ticks are 10 ms, and 300
# samples of about a millisecond each would read to ±33 µs.
v2=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)
run_ns() {  # PID [GROUP]
  if [ -n "${2:-}" ]; then awk '/^usage_usec/ {printf "%.0f\n", $2 * 1000}' "$2/cpu.stat"
  else cat /proc/"$1"/task/*/schedstat | awk '{s += $1} END {print s}'; fi
}
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }  # kB
anon() { awk '/RssAnon/ {print $2}' "/proc/$1/status"; }
# Private: pages no other process shares (what the node gains by stopping it);
# libc and libstdc++ pages are shared with every process, a Go binary's are not.
private() { awk '/^Private_(Clean|Dirty):/ {s += $2} END {print s}' "/proc/$1/smaps_rollup"; }
tick=$(getconf CLK_TCK)

bench=$(.build/release/slabwatch-bench 500)
kernel=$(awk '/kernel: read the sample.s [0-9]+ files/ {print $(NF-4)}' <<<"$bench")
kernel_paced=$(awk '/kernel: the [0-9]+ files, one read every 100 ms/ {print $(NF-2)}' <<<"$bench")
# The floor as the bench measured it before (every file with 1 MiB reads: each
# sysctl read then zeroes 1 MiB in the kernel), printed beside the honest one.
kernel_paced_before=$(awk '/kernel, as measured before: 1 MiB reads, every 100 ms/ {print $(NF-2)}' <<<"$bench")

# CPU per sample, nobody scraping: a 100 ms interval, 20 s a run, three runs
# of each of these in turn (the kernel's cost of /proc/slabinfo moves with
# the machine's partial slabs, so only runs side by side compare): the
# daemon; the floor as a process that reads the same files at the same pace
# and does nothing else (the bench's --floor-process: open, read, close);
# the same floor through descriptors kept open, as the daemon reads them.
# Each figure is the median of its three runs.
state=$(mktemp -d)  # the daemon checkpoints here as it would in /var/lib/slabwatch
per_run() {  # VARIABLE COMMAND…: sets VARIABLE to the µs of CPU per 100 ms over 20 s
  "${@:2}" 2>/dev/null & local p=$!; pids+=($p)
  local group=""
  if [ -n "$v2" ] && mkdir "$v2/slabwatch-compare-$p" 2>/dev/null; then
    group="$v2/slabwatch-compare-$p"; groups+=("$group"); echo $p >"$group/cgroup.procs"
  fi
  sleep 3; local a; a=$(run_ns $p $group); sleep 20; local b; b=$(run_ns $p $group); kill $p; wait $p 2>/dev/null || true
  [ -z "$group" ] || rmdir "$group"
  printf -v "$1" '%s' "$(awk -v d=$((b - a)) 'BEGIN {printf "%.0f", d / 200 / 1000}')"
}
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
daemon_runs=(); floor_runs=(); kept_runs=()
for _ in 1 2 3; do
  per_run us "$sw_bin" --web.listen-address 127.0.0.1:10177 --sampler.interval 100ms --state.directory "$state"; daemon_runs+=("$us")
  per_run us .build/release/slabwatch-bench 0 --floor-process; floor_runs+=("$us")
  per_run us .build/release/slabwatch-bench 0 --floor-process kept; kept_runs+=("$us")
done
per_sample=$(median "${daemon_runs[@]}"); floor_process=$(median "${floor_runs[@]}"); floor_kept=$(median "${kept_runs[@]}")

# The same with 1,000 memory cgroups to walk: a cgroup v2 tree of 1,000
# Kubernetes pod containers (systemd driver, containerd), each with a whole
# memory.stat as a 6.x kernel prints it, read through --path.cgroupfs.
cgroups=$(mktemp -d)
echo "cpuset cpu io memory pids" >"$cgroups/cgroup.controllers"; : >"$cgroups/cgroup.stat"
stat_keys="anon file kernel kernel_stack pagetables sec_pagetables percpu sock vmalloc shmem zswap zswapped file_mapped file_dirty file_writeback swapcached anon_thp file_thp shmem_thp inactive_anon active_anon inactive_file active_file unevictable slab_reclaimable slab_unreclaimable slab workingset_refault_anon workingset_refault_file workingset_activate_anon workingset_activate_file workingset_restore_anon workingset_restore_file workingset_nodereclaim pgscan pgsteal pgscan_kswapd pgscan_direct pgscan_khugepaged pgsteal_kswapd pgsteal_direct pgsteal_khugepaged pgfault pgmajfault pgrefill pgactivate pgdeactivate pglazyfree pglazyfreed zswpin zswpout zswpwb thp_fault_alloc thp_collapse_alloc thp_swpout thp_swpout_fallback"
for i in $(seq 1000); do
  pod=$(printf '%08x_1234_5678_9abc_%012x' "$i" "$i")
  dir="$cgroups/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod$pod.slice/cri-containerd-$(printf '%064x' "$i").scope"
  mkdir -p "$dir"
  for key in $stat_keys; do
    case $key in kernel) v=$((i * 40960));; slab_reclaimable) v=$((i * 8192));; slab_unreclaimable) v=$((i * 16384));; slab) v=$((i * 24576));; *) v=$((i * 4096));; esac
    echo "$key $v"
  done >"$dir/memory.stat"
done
per_run per_sample_cgroups "$sw_bin" --web.listen-address 127.0.0.1:10178 --sampler.interval 100ms --state.directory "" \
  --path.cgroupfs "$cgroups"

"$sw_bin" --web.listen-address 127.0.0.1:10077 --state.directory "$state" 2>/dev/null & sw=$!; pids+=($sw)
prometheus-node-exporter --web.listen-address=127.0.0.1:9100 --collector.disable-defaults \
  --collector.slabinfo --collector.meminfo --collector.filefd >/dev/null 2>&1 & ne=$!; pids+=($ne)
sleep 5
sw_idle=$(rss $sw); ne_idle=$(rss $ne); sw_private=$(private $sw); ne_private=$(private $ne)
# Idle with the cgroups, after the figures above: a second process mapping the
# same binary would make its pages shared, not private, in them.
"$sw_bin" --web.listen-address 127.0.0.1:10079 --state.directory "" --path.cgroupfs "$cgroups" 2>/dev/null & swc=$!; pids+=($swc)
sleep 5; swc_idle=$(rss $swc); swc_series=$(curl -s http://127.0.0.1:10079/metrics | grep -c '^slabwatch_cgroup_'); kill $swc
run() {  # PID URL [wrk options] → requests/s and CPU µs per request
  local a b out
  a=$(cpu $1); out=$(wrk -t2 -c16 -d"${seconds}s" -H 'Accept-Encoding: gzip' "${@:3}" "$2"); b=$(cpu $1)
  local rps total
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out"); total=$(awk '/requests in/ {print $1}' <<<"$out")
  echo "$rps $(awk -v d=$((b - a)) -v t=$tick -v n="$total" 'BEGIN {printf "%.0f", d / t / n * 1e6}')"
}
read -r sw_rps sw_scrape < <(run $sw http://127.0.0.1:10077/metrics)
read -r ne_rps ne_scrape < <(run $ne http://127.0.0.1:9100/metrics)
printf '| | slabwatch | node_exporter |\n|---|---|---|\n'
printf '| resident memory, idle | %.1f MB | %.1f MB |\n' "$(bc -l <<<"$sw_idle/1000")" "$(bc -l <<<"$ne_idle/1000")"
printf '| … of it private to the process, idle | %.1f MB | %.1f MB |\n' "$(bc -l <<<"$sw_private/1000")" "$(bc -l <<<"$ne_private/1000")"
printf '| resident memory, idle, with 1,000 memory cgroups to walk (%s cgroup series) | %.1f MB | – |\n' "$swc_series" "$(bc -l <<<"$swc_idle/1000")"
printf '| resident memory after %s s of wrk (anonymous) | %.1f MB (%.1f) | %.1f MB (%.1f) |\n' "$seconds" \
  "$(bc -l <<<"$(rss $sw)/1000")" "$(bc -l <<<"$(anon $sw)/1000")" "$(bc -l <<<"$(rss $ne)/1000")" "$(bc -l <<<"$(anon $ne)/1000")"
printf '| CPU per sample, nobody scraping (100 ms interval; runs: %s) | %s µs | – |\n' "${daemon_runs[*]}" "$per_sample"
printf '| … a process reading the same files at that pace, nothing else (runs: %s) | %s µs (%s×); through kept descriptors (runs: %s): %s µs (%s×) | – |\n' \
  "${floor_runs[*]}" "$floor_process" "$(awk -v a="$per_sample" -v b="$floor_process" 'BEGIN {printf "%.2f", a / b}')" \
  "${kept_runs[*]}" "$floor_kept" "$(awk -v a="$per_sample" -v b="$floor_kept" 'BEGIN {printf "%.2f", a / b}')"
printf '| … the reads alone, timed inside the bench (its wake not counted): paced | %s µs (%s×); back to back: %s µs; as measured before (1 MiB reads), paced: %s µs | – |\n' \
  "$kernel_paced" "$(awk -v a="$per_sample" -v b="$kernel_paced" 'BEGIN {printf "%.2f", a / b}')" "$kernel" "$kernel_paced_before"
printf '| CPU per sample with 1,000 memory cgroups (walked every 12th sample) | %s µs | – |\n' "$per_sample_cgroups"
printf '| /metrics with gzip, wrk 2×16 | %s requests/s, %s µs CPU each | %s requests/s, %s µs CPU each |\n' \
  "$sw_rps" "$sw_scrape" "$ne_rps" "$ne_scrape"

# The same two behind one exporter-toolkit web configuration: TLS 1.3
# (ECDSA P-256) and basic auth, keep-alive connections (wrk's default).
pki=$(mktemp -d)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$pki/key" -out "$pki/crt" 2>/dev/null
printf 'tls_server_config:\n  cert_file: crt\n  key_file: key\nbasic_auth_users:\n  bench: %s\n' \
  '$2y$10$vaGhZBVTv0F./3cFfFMOf.dVvoKnM14swfFqxR/CzI/5qhKkuoQQO' >"$pki/web.yml"  # password: hello
auth="Authorization: Basic $(printf bench:hello | base64)"
"$sw_bin" --web.listen-address 127.0.0.1:10078 --state.directory "$state" --web.config-file "$pki/web.yml" 2>/dev/null & swt=$!; pids+=($swt)
prometheus-node-exporter --web.listen-address=127.0.0.1:9101 --web.config.file="$pki/web.yml" --collector.disable-defaults \
  --collector.slabinfo --collector.meminfo --collector.filefd >/dev/null 2>&1 & net=$!; pids+=($net)
sleep 5
read -r swt_rps swt_scrape < <(run $swt https://127.0.0.1:10078/metrics -H "$auth")
read -r net_rps net_scrape < <(run $net https://127.0.0.1:9101/metrics -H "$auth")
printf '| /metrics with gzip over TLS + basic auth, keep-alive, wrk 2×16 | %s requests/s, %s µs CPU each | %s requests/s, %s µs CPU each |\n' \
  "$swt_rps" "$swt_scrape" "$net_rps" "$net_scrape"
printf '| resident memory after that (TLS) | %.1f MB | %.1f MB |\n' "$(bc -l <<<"$(rss $swt)/1000")" "$(bc -l <<<"$(rss $net)/1000")"
