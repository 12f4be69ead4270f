#!/usr/bin/env bash
# Heap allocations a tick of the daemon itself: the shipped static binary with
# a malloc counter preloaded (malloc, calloc, realloc and the aligned
# allocations, counted; each passed on to glibc), run at a 100 ms interval
# for SHORT and LONG seconds (default 10 and 40) with no state directory; the
# difference over the ticks between leaves start-up out. Prints one line.
# Needs a C compiler (cc) and a free loopback port 10399. Extra arguments go
# to the daemon (e.g. --path.cgroupfs DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
short=${SHORT:-10}; long=${LONG:-40}
binary=${BINARY:-$(scripts/build-static.sh 2>/dev/null)}
work=$(mktemp -d); pid=""
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
cat >"$work/count.c" <<'C'
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
extern void *__libc_malloc(size_t), *__libc_calloc(size_t, size_t), *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
static atomic_ulong count;
void *malloc(size_t n) { atomic_fetch_add(&count, 1); return __libc_malloc(n); }
void *calloc(size_t m, size_t n) { atomic_fetch_add(&count, 1); return __libc_calloc(m, n); }
void *realloc(void *p, size_t n) { atomic_fetch_add(&count, 1); return __libc_realloc(p, n); }
void *memalign(size_t a, size_t n) { atomic_fetch_add(&count, 1); return __libc_memalign(a, n); }
void *aligned_alloc(size_t a, size_t n) { atomic_fetch_add(&count, 1); return __libc_memalign(a, n); }
int posix_memalign(void **r, size_t a, size_t n) {
  atomic_fetch_add(&count, 1);
  void *p = __libc_memalign(a, n);
  if (!p) return 12;
  *r = p;
  return 0;
}
/* At exit (the daemon exits on SIGTERM): the count, into $ALLOCATIONS_FILE. */
__attribute__((destructor)) static void report(void) {
  const char *file = getenv("ALLOCATIONS_FILE");
  if (!file) return;
  int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return;
  dprintf(fd, "%lu\n", (unsigned long)atomic_load(&count));
  close(fd);
}
C
cc -O2 -shared -fPIC -o "$work/count.so" "$work/count.c"
allocations() {  # SECONDS [daemon arguments]: writes the daemon's allocations over its whole run to $work/count
  rm -f "$work/count"
  ALLOCATIONS_FILE="$work/count" LD_PRELOAD="$work/count.so" "$binary" --web.listen-address 127.0.0.1:10399 \
    --sampler.interval 100ms --state.directory "" "${@:2}" 2>"$work/log" & pid=$!
  sleep "$1"; kill -TERM "$pid"; wait "$pid" || true; pid=""
  [ -s "$work/count" ] || { cat "$work/log" >&2; echo "allocations.sh: the daemon left no count (did it exit at once?)" >&2; exit 1; }
}
allocations "$short" "$@"; a=$(cat "$work/count")
allocations "$long" "$@"; b=$(cat "$work/count")
awk -v a="$a" -v b="$b" -v short="$short" -v long="$long" -v t=$(((long - short) * 10)) \
  'BEGIN {printf "%d allocations in %d s, %d in %d s: %.3f a tick over %d ticks\n", a, short, b, long, (b - a) / t, t}'
