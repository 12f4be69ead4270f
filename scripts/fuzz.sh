#!/usr/bin/env bash
# Fuzzes slabwatch's parsers with libFuzzer: slabinfo, meminfo, the fs
# counters, loadavg, sockstat, /proc/cgroups and cgroup.stat, the HTTP request head, the /snapshot query, the YAML config loader,
# the recording reader and its sample directory names, the cache-filter
# regexes, the state file (restored, ticked and rendered), the web
# configuration, the Authorization header, a /snapshot read by top --url, the
# HTTP response top --url reads (status line, fields, body framing),
# what an attribution session reads (trace text, hist tables, allocinfo), and
# a measure --json report as diff reads it. Each runs SECONDS (default
# 60), seeded from Tests/Fixtures. A crash leaves its input in
# .build-fuzz/artifacts/ and fails the script; replay one with
#   SLABWATCH_FUZZ_TARGET=slabinfo .build-fuzz/debug/slabwatch-fuzz FILE
# (the regex target is .build-fuzz/debug/linearregex-fuzz, which also checks
# that a pattern means the same inside a group)
# and turn it into a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
targets=${TARGETS:-"slabinfo meminfo fs kernel-objects http-head query config recording replay-names regex state web-config basic-auth snapshot http-response attribution measurement"}
work=.build-fuzz
mkdir -p "$work/artifacts" "$work/tmp"
export TMPDIR=$PWD/$work/tmp  # the recording harness writes its samples there
trap 'rm -rf "$TMPDIR"' EXIT

for product in slabwatch-fuzz linearregex-fuzz; do
  swift build --package-path Fuzz --scratch-path "$work" -c debug --sanitize=fuzzer --sanitize=address -Xswiftc -sanitize=fuzzer,address \
    -Xswiftc -parse-as-library --product "$product" 2>&1 | tail -n 3
done
binary="$work/debug/slabwatch-fuzz"
harness() {  # TARGET: the binary that fuzzes it (the regex engine is a leaf with a harness of its own)
  case $1 in regex) echo "$work/debug/linearregex-fuzz" ;; *) echo "$binary" ;; esac
}

seed() {  # TARGET DIR: fills DIR with starting inputs
  local dir=$2 fixtures=Tests/Fixtures
  case $1 in
    slabinfo) find "$fixtures" -name slabinfo -exec sh -c 'cp "$1" "$2/$(echo "$1" | md5sum | cut -c1-12)"' _ {} "$dir" \; ;;
    meminfo) find "$fixtures" -name meminfo -exec sh -c 'cp "$1" "$2/$(echo "$1" | md5sum | cut -c1-12)"' _ {} "$dir" \; ;;
    fs) for f in inode-nr dentry-state file-nr; do cp "$fixtures/local-6.18/proc/sys/fs/$f" "$dir/$f"; done ;;
    kernel-objects) printf '0.16 0.69 0.73 8/170 31327\n' >"$dir/loadavg"
                    printf 'sockets: used 34\nTCP: inuse 1 orphan 0 tw 0 alloc 1 mem 17\nUDP: inuse 0 mem 0\n' >"$dir/sockstat"
                    printf '#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpuset\t3\t1\t1\nmemory\t4\t48\t1\n' >"$dir/cgroups"
                    printf 'nr_descendants 3\nnr_dying_descendants 2\nnr_dying_subsys_memory 1\n' >"$dir/cgroup.stat" ;;
    http-head) printf 'GET /metrics HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n' >"$dir/get"
               printf 'GET http://h:1/snapshot?slab=dentry&history=60 HTTP/1.0\r\nContent-Length: 0\r\n' >"$dir/abs" ;;
    query) printf 'slab=kmalloc-32&history=600' >"$dir/q1"; printf 'slab=%%6bmalloc-32&history=1e16' >"$dir/q2" ;;
    config) cp config/slabwatch.yml "$dir/shipped.yml" ;;
    recording) { cat "$fixtures/local-6.18/proc/slabinfo"; printf '\0'; cat "$fixtures/local-6.18/proc/meminfo"; printf '\0'
                 cat "$fixtures/local-6.18/proc/sys/fs/inode-nr"; printf '\0'; cat "$fixtures/local-6.18/proc/sys/fs/dentry-state"
                 printf '\0'; cat "$fixtures/local-6.18/proc/sys/fs/file-nr"; } >"$dir/local" ;;
    replay-names) printf '1795600000000\n1795600005000\n1795600010000\n' >"$dir/times"
                  printf -- '-9223372036854775808\n9223372036854775807\n0\n' >"$dir/ends" ;;
    state) SLABWATCH_FUZZ_SEED="$dir/seed" "$binary" >/dev/null 2>&1 ;;  # a small valid state, written by the harness
    web-config) printf 'tls_server_config:\n  cert: x\n  key: y\n  client_auth_type: RequestClientCert\nbasic_auth_users:\n  a: $2y$10$vaGhZBVTv0F./3cFfFMOf.dVvoKnM14swfFqxR/CzI/5qhKkuoQQO\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n' >"$dir/web.yml" ;;
    basic-auth) printf 'Basic YWxpY2U6aGVsbG8=' >"$dir/good"; printf 'basic  Ym9iOg==' >"$dir/empty-password" ;;
    snapshot) printf '{"timestamp":"2026-11-26T05:40:00.000Z","interval_seconds":5,"memory":{"total_bytes":1024},"fs":{"inodes":5},"caches":[{"name":"kmalloc-32","objects":128,"slabs":1,"footprint_bytes":4096,"aliases":["a\\u00e9"]}],"findings":[{"slab":"kmalloc-32","driver":"inodes","bytes_per_unit":32768,"r_squared":0.99,"phase":"rising"}]}' >"$dir/snapshot.json" ;;
    http-response) printf 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Content-Type-Options: nosniff\r\n\r\nhello' >"$dir/length"
                   printf 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: t\r\n\r\n' >"$dir/chunked"
                   printf 'HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.0 404 Not Found\nContent-Length: 2\n\nno' >"$dir/interim"
                   printf 'HTTP/1.1 200 OK\r\n\r\n{"timestamp":"2026-11-26T05:40:00.000Z","caches":[]}' >"$dir/until-close" ;;
    attribution) cp "$fixtures"/captures/attribution/*.txt "$dir/" ;;
    measurement) SLABWATCH_FUZZ_TARGET=measurement SLABWATCH_FUZZ_SEED="$dir/seed" "$binary" >/dev/null 2>&1  # a small report, by the harness
                 cp "$fixtures"/measure/*.json "$dir/" ;;
    regex) printf 'kmalloc-(\\d+|rcl-\\d+)k?\0kmalloc-rcl-64' >"$dir/r1"; printf '(a+)+$\0aaaaaaaaaaaaaaaaaaaa!' >"$dir/r2" ;;
  esac
}

failed=0
for target in $targets; do
  corpus="$work/corpus/$target"
  mkdir -p "$corpus"
  [ -n "$(ls -A "$corpus")" ] || seed "$target" "$corpus"
  echo "== $target: ${seconds}s"
  if ! SLABWATCH_FUZZ_TARGET=$target "$(harness "$target")" "$corpus" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
       -max_len=262144 -artifact_prefix="$work/artifacts/$target-" -print_final_stats=1 2>"$work/$target.log"; then
    echo "!! $target failed: see $work/$target.log and $work/artifacts/"; failed=1
  fi
  grep -E '^stat::(number_of_executed_units|new_units_added)|^#[0-9]+.*DONE' "$work/$target.log" | tr '\n' ' '; echo
done
exit $failed
