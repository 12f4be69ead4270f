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
#   stay shared: Debian's security updates of them must reach the daemon.
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
if [ -x "$toolchain/ld.lld" ]; then
  link+=(-Xswiftc -use-ld=lld -Xlinker -z -Xlinker pack-relative-relocs)
else
  # gold cannot pack relocations. (gold with -no-pie would need none at all,
  # at the price of a fixed address for the daemon's code: not taken.)
  echo "build-static.sh: no ld.lld in this Swift toolchain; linking with gold, without packed relocations" >&2
fi
swift build -c release --product slabwatch --static-swift-stdlib --scratch-path "$scratch" "${link[@]}" >&2
binary=$PWD/$scratch/slabwatch
if [ ! -e "$binary" ] || [ "$scratch/release/slabwatch" -nt "$binary" ]; then
  install -m 0755 "$scratch/release/slabwatch" "$binary.tmp"
  strip --strip-unneeded --remove-section=.comment --remove-section=.note "$binary.tmp"
  mv "$binary.tmp" "$binary"
fi
echo "$binary"
