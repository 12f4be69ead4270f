#!/usr/bin/env bash
# Builds the one slabwatch binary that scripts/run.sh runs, the .deb ships and
# the OCI image contains: release, the Swift runtime linked in
# (--static-swift-stdlib; a node needs glibc, libgcc_s, zlib and libyaml, no
# Swift), stripped.
# Prints its path: .build-static/slabwatch.
#
# Linked for few resident pages (each lever measured in the issue-32 study):
# - lld with packed relative relocations (DT_RELR): the ~29,000 relative
#   relocations of a position-independent Swift binary take 6 kB instead of
#   700 kB of .rela.dyn, which the loader reads at every start;
# - no exported dynamic symbols: the static runtime's link file exports every
#   symbol (--export-dynamic), 390 kB of .dynsym/.dynstr that nothing looks up
#   (a stripped binary's backtraces then show addresses: symbolize them with
#   addr2line against .build-static/release/slabwatch, which keeps its symbols);
# - libstdc++ (the Swift runtime's C++) linked from its archive: 1 MB of
#   libstdc++.so.6 no longer mapped for a handful of functions. zlib and libyaml
#   stay shared: Debian's security updates of them must reach the daemon;
# - the functions a daemon runs laid out side by side (scripts/symbol-order.txt,
#   written by scripts/symbol-order.sh), so they fill fewer resident pages.
# Development builds and the tests keep SwiftPM's defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=.build-static
toolchain=$(dirname "$(realpath "$(command -v swiftc)")")

# The runtime's -lstdc++ takes the first libstdc++.* on the library path: a
# directory holding only the archive, searched before the compiler's own
# (where libstdc++.so is), makes it the archive. scripts/check-linkage.sh
# (run by test-package.sh) fails if it ever is not.
archives=$PWD/$scratch/static-libs
archive=$("$toolchain/clang" -print-file-name=libstdc++.a)
[ -f "$archive" ] || { echo "build-static.sh: no libstdc++.a (apt-get install libstdc++-12-dev)" >&2; exit 1; }
mkdir -p "$archives" && ln -sfn "$archive" "$archives/libstdc++.a"

link=(-Xlinker --no-export-dynamic -Xlinker -L"$archives")
# Each Swift function in a section of its own: the linker can then drop the
# ones nothing calls and lay out the rest as the order file says. (By default
# most of a file's functions share one .text section and move together: the
# binary was 0.2 MB larger and 0.4-0.6 MB more resident.)
link+=(-Xswiftc -Xfrontend -Xswiftc -function-sections)
if [ -x "$toolchain/ld.lld" ]; then
  link+=(-Xswiftc -use-ld=lld -Xlinker -z -Xlinker pack-relative-relocs)
else
  # gold cannot pack relocations. (gold with -no-pie would need none at all,
  # at the price of a fixed address for the daemon's code: not taken.)
  echo "build-static.sh: no ld.lld in this Swift toolchain; linking with gold, without packed relocations" >&2
fi
order=scripts/symbol-order.txt
if [ -x "$toolchain/ld.lld" ] && [ -f "$order" ]; then
  link+=(-Xlinker --symbol-ordering-file="$PWD/$order")
  # SwiftPM does not know the file is an input of the link: a binary linked
  # with other contents of it is removed, so the link runs again.
  sum=$(sha256sum <"$order")
  [ "$(cat "$scratch/order-sum" 2>/dev/null)" = "$sum" ] || rm -f "$scratch/release/slabwatch"
  mkdir -p "$scratch" && printf '%s' "$sum" >"$scratch/order-sum"
elif [ -f "$order" ]; then
  echo "build-static.sh: without ld.lld, $order is not used: the code a daemon runs is not laid out together" >&2
fi
# SwiftPM does not rebuild what it built before when only -Xswiftc flags
# change: a scratch directory built with other flags starts afresh.
flags="${link[*]}"
if [ "$(cat "$scratch/build-flags" 2>/dev/null)" != "$flags" ]; then
  rm -rf "$scratch/release" "$scratch/x86_64-unknown-linux-gnu" "$scratch/aarch64-unknown-linux-gnu"
fi
mkdir -p "$scratch" && printf '%s' "$flags" >"$scratch/build-flags"
# lld names each function of the order file that the binary no longer has (or
# that the link dropped as unused or folded): a count, not a page of warnings,
# and a hint when the list has gone stale.
log=$(mktemp); trap 'rm -f "$log"' EXIT
swift build -c release --product slabwatch --static-swift-stdlib --scratch-path "$scratch" "${link[@]}" 2>&1 |
  tee "$log" | { grep -vE 'symbol ordering file: no such symbol|unable to order [a-z]+ symbol' || true; } >&2
gone=$(grep -cE 'symbol ordering file: no such symbol|unable to order [a-z]+ symbol' "$log" || true)
if [ "$gone" -gt 0 ]; then
  listed=$(grep -vc '^#' "$order")
  hint=""; [ $((gone * 10)) -le "$listed" ] || hint="; regenerate it with scripts/symbol-order.sh"
  echo "build-static.sh: $gone of the $listed functions in $order are no longer in the binary$hint" >&2
fi
binary=$PWD/$scratch/slabwatch
if [ ! -e "$binary" ] || [ "$scratch/release/slabwatch" -nt "$binary" ]; then
  install -m 0755 "$scratch/release/slabwatch" "$binary.tmp"
  strip --strip-unneeded --remove-section=.comment --remove-section=.note "$binary.tmp"
  mv "$binary.tmp" "$binary"
fi
echo "$binary"
