#!/usr/bin/env bash
# Copies this machine's slab-related /proc and /sys files into DIR, laid out
# like a procfs/sysfs root, so slabwatch can read it with
#   --path.procfs DIR/proc --path.sysfs DIR/sys
# Needs root (or CAP_DAC_READ_SEARCH) for /proc/slabinfo and reclaim_account.
set -euo pipefail
dir=$(realpath -m "${1:?usage: capture-proc.sh DIR}")
mkdir -p "$dir/proc/sys/fs" "$dir/sys/kernel/slab"
cat /proc/slabinfo > "$dir/proc/slabinfo"
cat /proc/meminfo > "$dir/proc/meminfo"
for f in inode-nr dentry-state file-nr; do cat "/proc/sys/fs/$f" > "$dir/proc/sys/fs/$f"; done
cd /sys/kernel/slab
for entry in *; do
  if [ -L "$entry" ]; then
    ln -sfn "$(basename "$(readlink "$entry")")" "$dir/sys/kernel/slab/$entry"
  else
    mkdir -p "$dir/sys/kernel/slab/$entry"
    for f in reclaim_account aliases objects total_objects object_size slab_size objs_per_slab order slabs; do
      cat "$entry/$f" > "$dir/sys/kernel/slab/$entry/$f" 2>/dev/null || true
    done
  fi
done
