#ifndef SLABWATCH_BPF_MAPS_H
#define SLABWATCH_BPF_MAPS_H

// The maps the attribution program (bpf/attribution.bpf.c) fills and the
// loader reads when a session ends: one definition for both sides. Built into
// the BPF object with vmlinux.h (which has the __u64 family), into the loader
// with <linux/types.h>.
#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define SLABWATCH_BPF_NAME_MAX 64
#define SLABWATCH_BPF_STACK_DEPTH 32

// What the session traces, written into the one-entry `session_config` map after the
// object is loaded and before the programs are attached.
struct slabwatch_bpf_config {
    char cache_name[SLABWATCH_BPF_NAME_MAX];  // NUL-terminated, matched against kmem_cache->name
    __u32 cache_name_length;                  // without the NUL
    __u32 kmalloc_size;                       // bytes_alloc of a kmalloc-N session; 0: no kmalloc events
    __u32 gfp_mask;                           // kmalloc's gfp class: (gfp_flags & mask) == value
    __u32 gfp_value;
    __u32 stack_limit;                        // allocations that get a stack; the rest are only counted
    __u32 large_min;                          // a large-allocation session: kmalloc with bytes_alloc >= this (more than
                                              // the largest kmalloc cache holds; no cache is matched); 0: a cache's
};

// Session-wide counters (a per-CPU array, summed by the loader).
enum slabwatch_bpf_counter {
    SLABWATCH_BPF_ALLOCATIONS,      // allocations from the cache
    SLABWATCH_BPF_FREES,            // frees of objects allocated in the session
    SLABWATCH_BPF_LIVE_FULL,        // allocations not followed: the live map was full
    SLABWATCH_BPF_STACKS_LOST,      // sampled allocations whose stack the stack map could not keep
    SLABWATCH_BPF_SITES_FULL,       // allocations of a call site the site map had no room for
    SLABWATCH_BPF_OWNERS_FULL,      // allocations of a (site, process, cgroups) the owner map had no room for
    SLABWATCH_BPF_REUSED,           // an address allocated again before its free was seen (freed untraced),
                                    // except a large allocation's second event (see attribution.bpf.c)
    SLABWATCH_BPF_COUNTERS,
};

// Per call site (the allocation's return address).
struct slabwatch_bpf_site {
    __u64 allocations;
    __u64 frees;
    __s64 net_count;  // followed allocations minus their frees
    __s64 net_bytes;
};

// Per call site, process, cgroup and memory cgroup: who allocates.
struct slabwatch_bpf_owner_key {
    __u64 call_site;
    __u64 cgroup;  // bpf_get_current_cgroup_id: the cgroup2 directory's inode
    __u64 memcg;   // the memory cgroup's directory inode, in the hierarchy the memory controller is on (0: unknown)
    __u32 tgid;
    __u32 pad;
};

struct slabwatch_bpf_owner {
    __u64 allocations;
    __s64 net_count;
    __s64 net_bytes;
};

// Per call site and sampled stack.
struct slabwatch_bpf_stack_key {
    __u64 call_site;
    __s32 stack_id;
    __u32 pad;
};

struct slabwatch_bpf_stack {
    __u64 allocations;
    __s64 net;
};

// An object allocated in the session and not yet freed: what its free undoes.
struct slabwatch_bpf_object {
    __u64 call_site;
    __u64 cgroup;
    __u64 memcg;
    __u32 tgid;
    __u32 pid;       // the thread: a large allocation's second event comes from the same one
    __u32 bytes;
    __s32 stack_id;  // < 0: not sampled
};

#endif
