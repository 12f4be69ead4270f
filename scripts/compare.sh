#!/usr/bin/env bash
# slabwatch beside node_exporter (slabinfo, meminfo and filefd collectors) in
# one run on this machine: idle resident memory, CPU per sample with nobody
# scraping (against a process that only reads the same files at the same
# pace, and against the reads' own cost inside the bench), CPU per
# scrape and throughput under wrk, and resident memory after a minute of it;
# the same with 1,000 memory cgroups to walk (a cgroup v2 fixture tree); then
# both again behind the same web configuration file (TLS + basic auth); then
# both at 5,000 caches, read from a procfs fixture.
# Needs root, wrk and prometheus-node-exporter. SECONDS of wrk (default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
for tool in wrk prometheus-node-exporter openssl; do command -v $tool >/dev/null || { echo "compare.sh: needs $tool" >&2; exit 1; }; done
sw_bin=$(scripts/build-static.sh 2>/dev/null)  # the binary the .deb and the image ship
swift build -c release --product slabwatch-bench >/dev/null
pids=(); state=""; pki=""; cgroups=""; fixture=""
groups=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; for g in "${groups[@]}"; do rmdir "$g" 2>/dev/null || true; done
      for d in "$state" "$pki" "$cgroups" "$fixture"; do [ -z "$d" ] || rm -rf "$d"; done' EXIT
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

# At 5,000 caches: a machine with slab merging off (slub_nomerge) and many
# per-device, per-mount and per-module caches. The live kernel cannot be made
# to have them, so both tools read a fixture: a temporary procfs directory
# with the files they read (the daemon's nine, node_exporter's slabinfo,
# meminfo and file-nr among them, and the boot id), copied from the live
# kernel, except slabinfo, which holds the live header and rows and
# synthetic rows to 5,000 in all (no two names the same), and meminfo, whose
# slab lines count the synthetic caches too. A sysfs directory holds
# kernel/slab/NAME/reclaim_account for every cache, as that machine's would
# (no aliases with merging off; the daemon reads it once, when the names
# change): pointed at an empty one, the daemon would mark its sysfs source
# down and leave reclaimability unknown; at the live /sys, it would find
# none of the synthetic caches. No self/mountinfo: the daemon finds no memory
# cgroup hierarchy and walks none (the cgroup walk is the part above).
fixture=$(mktemp -d)
mkdir -p "$fixture/proc/sys/fs" "$fixture/proc/net" "$fixture/proc/sys/kernel/random" "$fixture/sys/kernel/slab"
for file in sys/fs/inode-nr sys/fs/dentry-state sys/fs/file-nr zoneinfo loadavg net/sockstat cgroups sys/kernel/random/boot_id; do
  cat "/proc/$file" >"$fixture/proc/$file"
done
# Rows: NAME RECLAIMABLE, then the slabinfo line. The synthetic rows come
# from families of caches one driver or file system makes per instance, with
# the families' own object sizes; most caches are small or empty, a few
# large, as on a real machine. Fixed seed: the same fixture every run.
for name in $(awk 'NR > 2 {print $1}' /proc/slabinfo); do
  echo "$name $(cat "/sys/kernel/slab/$name/reclaim_account" 2>/dev/null || echo 0)"
done >"$fixture/live-reclaim"
awk -v total=5000 -v reclaim="$fixture/live-reclaim" -v slabs="$fixture/slab-kb" '
  BEGIN {
    srand(5000)
    while ((getline line < reclaim) > 0) { split(line, f, " "); live[f[1]] = f[2] }
    # family name format, object size, reclaimable
    n = split("ext4_inode_cache-dm-%d 1192 1|ext4_extent_status-dm-%d 40 1|xfs_inode-nvme%dn1 1024 1|xfs_ili-nvme%dn1 264 1|" \
              "fuse_inode-%d 832 1|fuse_request-%d 152 0|nfs_inode_cache-%d 1064 1|nfs_read_data-%d 896 0|ovl_inode-%d 688 1|" \
              "btrfs_inode-sd%d 1232 1|btrfs_extent_buffer-sd%d 280 0|ceph_inode_info-%d 1344 1|zs_handle-zram%d 8 0|" \
              "zspage-zram%d 56 0|bio-%d 0 0|dm_bufio_buffer-%d 144 0|kcopyd_job-%d 3240 0|dm_io-%d 48 0|" \
              "nf_conntrack_ffff8881%08x 256 0|kvm_vcpu-%d 10560 0|kvm_mmu_page_header-%d 184 0|vhost_net_ubuf-%d 96 0|" \
              "scsi_sense_cache-host%d 128 0|virtio_scsi_cmd-%d 200 0|mlx5_fs_fgs-%d 736 0|rpc_tasks-%d 256 0|io_kiocb-%d 256 0", family, "|")
    for (i = 1; i <= n; i++) { split(family[i], f, " "); format[i] = f[1]; size[i] = f[2]; flag[i] = f[3]; instance[i] = 0 }
  }
  function row(name, size, flag,   pages, per, r, count, active) {
    pages = size <= 256 ? 1 : size <= 1024 ? 2 : size <= 2048 ? 4 : 8
    per = int(pages * 4096 / size)
    r = rand()
    count = r < 0.3 ? 0 : r < 0.8 ? 1 + int(rand() * 8) : r < 0.97 ? int(rand() * 64) : int(rand() * 1000)
    active = count == 0 ? 0 : int(count * per * (0.6 + 0.4 * rand()))
    printf "%s %d %-17s %6d %6d %6d %4d %4d : tunables %4d %4d %4d : slabdata %6d %6d %6d\n",
      name, flag, name, active, count * per, size, per, pages, 0, 0, 0, count, count, 0
    kb[flag] += count * pages * 4
  }
  NR <= 2 { print "- - " $0; next }
  { print $1, ($1 in live) ? live[$1] : 0, $0; seen[$1] = 1; rows++ }
  END {
    for (i = 0; rows < total; i++) {
      # bio-SIZE: one bio set a front pad size; nf_conntrack_ADDRESS: one a
      # network namespace (as older kernels named them); the rest by instance
      k = i % n + 1; s = size[k] ? size[k] : 64 + 8 * instance[k]
      name = sprintf(format[k], !size[k] ? s : format[k] ~ /%08x/ ? 975896576 + 11328 * instance[k] : instance[k]); instance[k]++
      if (name in seen) continue
      seen[name] = 1; rows++
      row(name, s, flag[k])
    }
    printf "%d %d\n", kb[1], kb[0] >slabs
  }' /proc/slabinfo >"$fixture/rows"
cut -d' ' -f3- "$fixture/rows" >"$fixture/proc/slabinfo"
[ "$(awk 'NR > 2 {print $1}' "$fixture/proc/slabinfo" | sort | uniq -d | wc -l)" = 0 ] || { echo "compare.sh: fixture names repeat" >&2; exit 1; }
caches5k=$(($(wc -l <"$fixture/proc/slabinfo") - 2))
read -r reclaimable_kb unreclaimable_kb <"$fixture/slab-kb"
awk -v r="$reclaimable_kb" -v u="$unreclaimable_kb" '
  function put(kb) { printf "%-16s%8d kB\n", $1, kb }
  $1 == "MemFree:" { put($2 - r - u); next }
  $1 == "MemAvailable:" { put($2 - u); next }
  $1 == "Slab:" { put($2 + r + u); next }
  $1 == "SReclaimable:" { put($2 + r); next }
  $1 == "SUnreclaim:" { put($2 + u); next }
  { print }' /proc/meminfo >"$fixture/proc/meminfo"
awk 'NR > 2 {print $1}' "$fixture/rows" | (cd "$fixture/sys/kernel/slab" && xargs -d '\n' mkdir)
while read -r name flag _; do [ "$name" = - ] || echo "$flag" >"$fixture/sys/kernel/slab/$name/reclaim_account"; done <"$fixture/rows"

# The processes above are stopped first: a second slabwatch mapping the same
# binary would make its pages shared, not private, and they would take CPU.
kill $sw $ne $swt $net 2>/dev/null || true; wait $sw $ne $swt $net 2>/dev/null || true
pss() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup"; }
mb() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1000}'; }
series() { curl -s "$1" | grep -vc '^#'; }                                  # lines of /metrics that are not comments
gzip_kb() { curl -s -H 'Accept-Encoding: gzip' "$1" | wc -c | awk '{printf "%.0f", $1 / 1000}'; }
on_fixture=(--state.directory "" --path.procfs "$fixture/proc" --path.sysfs "$fixture/sys")
every_cache=(--slab.export all --sampler.max-caches 8192)   # every cache kept and exported (the default keeps 2,048)

# CPU per sample at a 100 ms interval, as above, the daemon (as shipped, and
# keeping every cache) against the floor process on the same fixture. The
# fixture's files are regular files, not procfs: the daemon opens each one
# every time (it keeps descriptors open only on procfs), so the fair floor is
# the floor process that opens them too, not the kept one.
daemon5k_runs=(); every5k_runs=(); floor5k_runs=()
for _ in 1 2 3; do
  per_run us "$sw_bin" --web.listen-address 127.0.0.1:10180 --sampler.interval 100ms "${on_fixture[@]}"; daemon5k_runs+=("$us")
  per_run us "$sw_bin" --web.listen-address 127.0.0.1:10181 --sampler.interval 100ms "${on_fixture[@]}" "${every_cache[@]}"; every5k_runs+=("$us")
  per_run us .build/release/slabwatch-bench 0 "$fixture/proc" --floor-process; floor5k_runs+=("$us")
done
per_sample5k=$(median "${daemon5k_runs[@]}"); every_sample5k=$(median "${every5k_runs[@]}"); floor5k=$(median "${floor5k_runs[@]}")

# Memory, series and throughput: the shipped defaults beside node_exporter,
# then every cache exported, alone.
"$sw_bin" --web.listen-address 127.0.0.1:10080 "${on_fixture[@]}" 2>/dev/null & sw5=$!; pids+=($sw5)
prometheus-node-exporter --web.listen-address=127.0.0.1:9102 --path.procfs="$fixture/proc" --path.sysfs="$fixture/sys" \
  --collector.disable-defaults --collector.slabinfo --collector.meminfo --collector.filefd >/dev/null 2>&1 & ne5=$!; pids+=($ne5)
sleep 5
sw5_idle=$(rss $sw5); ne5_idle=$(rss $ne5); sw5_private=$(private $sw5); ne5_private=$(private $ne5); sw5_pss=$(pss $sw5); ne5_pss=$(pss $ne5)
sw5_series=$(series http://127.0.0.1:10080/metrics); sw5_gzip=$(gzip_kb http://127.0.0.1:10080/metrics)
ne5_series=$(series http://127.0.0.1:9102/metrics); ne5_gzip=$(gzip_kb http://127.0.0.1:9102/metrics)
read -r sw5_rps sw5_scrape < <(run $sw5 http://127.0.0.1:10080/metrics)
read -r ne5_rps ne5_scrape < <(run $ne5 http://127.0.0.1:9102/metrics)
sw5_after=$(rss $sw5); sw5_anon=$(anon $sw5); ne5_after=$(rss $ne5); ne5_anon=$(anon $ne5)
kill $sw5 $ne5; wait $sw5 $ne5 2>/dev/null || true
"$sw_bin" --web.listen-address 127.0.0.1:10081 "${on_fixture[@]}" --slab.export all 2>/dev/null & swa=$!; pids+=($swa)
sleep 5; swa_series=$(series http://127.0.0.1:10081/metrics); kill $swa; wait $swa 2>/dev/null || true
"$sw_bin" --web.listen-address 127.0.0.1:10082 "${on_fixture[@]}" "${every_cache[@]}" 2>/dev/null & swe=$!; pids+=($swe)
sleep 5
swe_idle=$(rss $swe); swe_private=$(private $swe); swe_pss=$(pss $swe)
swe_series=$(series http://127.0.0.1:10082/metrics); swe_gzip=$(gzip_kb http://127.0.0.1:10082/metrics)
read -r swe_rps swe_scrape < <(run $swe http://127.0.0.1:10082/metrics)
swe_after=$(rss $swe); swe_anon=$(anon $swe)
kill $swe; wait $swe 2>/dev/null || true

printf '\nAt %s caches (a procfs fixture: this kernel'"'"'s rows and synthetic ones; "every cache": %s):\n\n' "$caches5k" "${every_cache[*]}"
printf '| | slabwatch | node_exporter |\n|---|---|---|\n'
printf '| resident memory, idle | %s MB; every cache: %s MB | %s MB |\n' "$(mb $sw5_idle)" "$(mb $swe_idle)" "$(mb $ne5_idle)"
printf '| … of it private to the process, idle | %s MB; every cache: %s MB | %s MB |\n' "$(mb $sw5_private)" "$(mb $swe_private)" "$(mb $ne5_private)"
printf '| … proportional (PSS), idle | %s MB; every cache: %s MB | %s MB |\n' "$(mb $sw5_pss)" "$(mb $swe_pss)" "$(mb $ne5_pss)"
printf '| series on /metrics (gzip size) | %s (%s kB); --slab.export all alone: %s; every cache: %s (%s kB) | %s (%s kB) |\n' \
  "$sw5_series" "$sw5_gzip" "$swa_series" "$swe_series" "$swe_gzip" "$ne5_series" "$ne5_gzip"
printf '| /metrics with gzip, wrk 2×16 | %s requests/s, %s µs CPU each; every cache: %s requests/s, %s µs | %s requests/s, %s µs CPU each |\n' \
  "$sw5_rps" "$sw5_scrape" "$swe_rps" "$swe_scrape" "$ne5_rps" "$ne5_scrape"
printf '| resident memory after %s s of wrk (anonymous) | %s MB (%s); every cache: %s MB (%s) | %s MB (%s) |\n' "$seconds" \
  "$(mb $sw5_after)" "$(mb $sw5_anon)" "$(mb $swe_after)" "$(mb $swe_anon)" "$(mb $ne5_after)" "$(mb $ne5_anon)"
printf '| CPU per sample, nobody scraping (100 ms interval; runs: %s) | %s µs; every cache (runs: %s): %s µs | – |\n' \
  "${daemon5k_runs[*]}" "$per_sample5k" "${every5k_runs[*]}" "$every_sample5k"
printf '| … a process reading the same files at that pace, opening each every time (runs: %s) | %s µs (%s×; every cache %s×) | – |\n' \
  "${floor5k_runs[*]}" "$floor5k" "$(awk -v a="$per_sample5k" -v b="$floor5k" 'BEGIN {printf "%.2f", a / b}')" \
  "$(awk -v a="$every_sample5k" -v b="$floor5k" 'BEGIN {printf "%.2f", a / b}')"
