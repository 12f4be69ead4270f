// SPDX-License-Identifier: GPL-2.0
// slabwatch's attribution session in the kernel: counts one slab cache's
// allocations (or the kmallocs too large for any cache, which SLUB takes from
// the page allocator) per call site, follows each allocated object until its free (so
// the net is exact, not allocations seen minus frees seen), and keeps who
// allocated it (process, cgroup, memory cgroup) and, for a bounded sample, the stack. Nothing
// is sent to user space per event: slabwatch reads the maps when the session
// ends. BTF tracepoints, not kprobes: the kmem tracepoints kept their
// arguments when the allocator functions were renamed (`*_noprof`, 6.10).
//
// Built by scripts/bpf.sh against the running kernel's vmlinux.h; the object
// is committed as Sources/CBPF/attribution_object.h.
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "slabwatch_bpf_maps.h"

char LICENSE[] SEC("license") = "GPL";

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct slabwatch_bpf_config);
} session_config SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, SLABWATCH_BPF_COUNTERS);
    __type(key, __u32);
    __type(value, __u64);
} counters SEC(".maps");

// Sized by the loader (attribution.max-live-objects); elements are allocated
// as objects are followed, not up front.
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __uint(max_entries, 1 << 20);
    __type(key, __u64);
    __type(value, struct slabwatch_bpf_object);
} live SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, __u64);
    __type(value, struct slabwatch_bpf_site);
} sites SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16384);
    __type(key, struct slabwatch_bpf_owner_key);
    __type(value, struct slabwatch_bpf_owner);
} owners SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, struct slabwatch_bpf_stack_key);
    __type(value, struct slabwatch_bpf_stack);
} stack_counts SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_STACK_TRACE);
    __uint(max_entries, 2048);
    __uint(key_size, sizeof(__u32));
    __uint(value_size, SLABWATCH_BPF_STACK_DEPTH * sizeof(__u64));
} stacks SEC(".maps");

// The command of each allocating process, taken at its first allocation.
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, __u32);
    __type(value, char[16]);
} comms SEC(".maps");

// Caches whose name was compared and did not match, so a name is read at most
// once per cache; once the target's pointer is known, only pointers are compared.
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, __u64);
    __type(value, __u8);
} other_caches SEC(".maps");

__u64 target_cache = 0;
__u32 stacks_taken = 0;

static __always_inline void count(__u32 which) {
    __u64 *value = bpf_map_lookup_elem(&counters, &which);
    if (value) *value += 1;  // per CPU: no atomics needed
}

static __always_inline struct slabwatch_bpf_config *settings(void) {
    __u32 zero = 0;
    return bpf_map_lookup_elem(&session_config, &zero);
}

static __always_inline int is_target(struct kmem_cache *s, struct slabwatch_bpf_config *cfg) {
    __u64 pointer = (__u64)s;
    if (target_cache) return pointer == target_cache;
    if (bpf_map_lookup_elem(&other_caches, &pointer)) return 0;
    char name[SLABWATCH_BPF_NAME_MAX];
    const char *text = BPF_CORE_READ(s, name);
    if (bpf_probe_read_kernel_str(name, sizeof name, text) < 0) return 0;
    for (int i = 0; i < SLABWATCH_BPF_NAME_MAX; i++) {
        if (name[i] != cfg->cache_name[i]) {
            __u8 one = 1;
            bpf_map_update_elem(&other_caches, &pointer, &one, BPF_ANY);
            return 0;
        }
        if (name[i] == 0) break;
    }
    target_cache = pointer;
    return 1;
}

// The memory cgroup the kernel charges the current task's accounted
// allocations to (mm/memcontrol.c, get_mem_cgroup_from_current): the one
// `current->active_memcg` names while kernel code charges on another's behalf,
// else the task's own, `task->cgroups->subsys[memory_cgrp_id]`. Its id is its
// directory's inode in the hierarchy the memory controller is mounted on. That
// need not be the cgroup bpf_get_current_cgroup_id() names, which is always the
// cgroup2 one: on a host with the memory controller on v1 beside a cgroup2
// mount without it, that is `/` for every process, and says nothing about who
// is charged. A kernel without the memory controller has no memory_cgrp_id
// (CO-RE leaves the branch out): `cgroup`, the cgroup2 id, stands in. In an
// interrupt this is the interrupted task's, as the rest of the owner is (the
// kernel charges such an allocation to its per-CPU int_active_memcg or none).
static __always_inline __u64 memory_cgroup(__u64 cgroup) {
    if (!bpf_core_enum_value_exists(enum cgroup_subsys_id, memory_cgrp_id)) return cgroup;
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    struct cgroup_subsys_state *css = NULL;
    if (bpf_core_field_exists(task->active_memcg)) {
        struct mem_cgroup *active = BPF_CORE_READ(task, active_memcg);
        if (active) css = &active->css;
    }
    if (!css) {
        struct css_set *set = BPF_CORE_READ(task, cgroups);
        if (set) bpf_core_read(&css, sizeof css, &set->subsys[bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id)]);
    }
    return css ? BPF_CORE_READ(css, cgroup, kn, id) : 0;
}

// Finds or creates the value for `key`; NULL when the map is full.
static __always_inline void *entry(void *map, const void *key, const void *zero) {
    void *value = bpf_map_lookup_elem(map, key);
    if (value) return value;
    bpf_map_update_elem(map, key, zero, BPF_NOEXIST);
    return bpf_map_lookup_elem(map, key);
}

// Undoes a followed object's part of the net: at its free (or an untraced
// free found when its address came back), or, `taken_back`, when its event
// turns out to be the first of a large allocation's two: then it was no
// allocation either, and its site, owner and stack lose it as one.
static __always_inline void forget(const struct slabwatch_bpf_object *object, int taken_back) {
    struct slabwatch_bpf_site *site = bpf_map_lookup_elem(&sites, &object->call_site);
    if (site) {
        if (taken_back) __sync_fetch_and_sub(&site->allocations, 1);
        else __sync_fetch_and_add(&site->frees, 1);
        __sync_fetch_and_sub(&site->net_count, 1);
        __sync_fetch_and_sub(&site->net_bytes, (__s64)object->bytes);
    }
    struct slabwatch_bpf_owner_key owner_key = {.call_site = object->call_site, .cgroup = object->cgroup, .memcg = object->memcg,
                                                .tgid = object->tgid};
    struct slabwatch_bpf_owner *owner = bpf_map_lookup_elem(&owners, &owner_key);
    if (owner) {
        if (taken_back) __sync_fetch_and_sub(&owner->allocations, 1);
        __sync_fetch_and_sub(&owner->net_count, 1);
        __sync_fetch_and_sub(&owner->net_bytes, (__s64)object->bytes);
    }
    if (object->stack_id >= 0) {
        struct slabwatch_bpf_stack_key stack_key = {.call_site = object->call_site, .stack_id = object->stack_id};
        struct slabwatch_bpf_stack *stack = bpf_map_lookup_elem(&stack_counts, &stack_key);
        if (stack) {
            if (taken_back) __sync_fetch_and_sub(&stack->allocations, 1);
            __sync_fetch_and_sub(&stack->net, 1);
        }
    }
}

// A kmalloc too large for any cache fires the kmalloc tracepoint twice with
// the same pointer (mm/slub.c, 6.1 onwards): __kmalloc_large_node_noprof()
// traces it with its own return address, inside the allocator
// (`__kmalloc_noprof+0x4b5`), and __do_kmalloc_node() traces it again for the
// real caller (`pipe_resize_ring+0x30`), from the same thread, with the same
// size, before anyone can free it. (A caller that calls kmalloc_large directly,
// a constant size, gets only the one.) So, in a large session, an allocation of
// a pointer still live from the same thread with the same size is the first
// event's allocation: that one is taken back and this one counted, at the later
// (outer) call site and with the first one's stack. Any other live pointer
// allocated again was freed where no tracepoint saw it (REUSED).
static __always_inline int second_event(const struct slabwatch_bpf_object *earlier, __u32 pid, __u32 bytes, int large) {
    return large && earlier->pid == pid && earlier->bytes == bytes;
}

static __always_inline void allocated(void *ctx, __u64 call_site, const void *ptr, __u32 bytes, int large,
                                      struct slabwatch_bpf_config *cfg) {
    __u64 address = (__u64)ptr;
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    __s32 stack_id = -1;
    struct slabwatch_bpf_object *previous = bpf_map_lookup_elem(&live, &address);
    if (previous) {
        struct slabwatch_bpf_object earlier = *previous;
        if (bpf_map_delete_elem(&live, &address) == 0) {
            if (second_event(&earlier, (__u32)pid_tgid, bytes, large)) {
                forget(&earlier, 1);
                stack_id = earlier.stack_id;
            } else {
                count(SLABWATCH_BPF_REUSED);
                forget(&earlier, 0);
            }
        }
    }
    count(SLABWATCH_BPF_ALLOCATIONS);
    struct slabwatch_bpf_site zero_site = {};
    struct slabwatch_bpf_site *site = entry(&sites, &call_site, &zero_site);
    if (!site) {
        count(SLABWATCH_BPF_SITES_FULL);
        return;
    }
    __sync_fetch_and_add(&site->allocations, 1);

    __u64 cgroup = bpf_get_current_cgroup_id();
    struct slabwatch_bpf_object object = {
        .call_site = call_site, .cgroup = cgroup, .memcg = memory_cgroup(cgroup), .tgid = pid_tgid >> 32, .pid = (__u32)pid_tgid,
        .bytes = bytes, .stack_id = stack_id,
    };
    if (bpf_map_update_elem(&live, &address, &object, BPF_NOEXIST) != 0) {
        count(SLABWATCH_BPF_LIVE_FULL);
        return;
    }
    if (object.stack_id < 0 && stacks_taken < cfg->stack_limit && __sync_fetch_and_add(&stacks_taken, 1) < cfg->stack_limit) {
        long id = bpf_get_stackid(ctx, &stacks, 0);
        if (id >= 0) {
            object.stack_id = (__s32)id;
            bpf_map_update_elem(&live, &address, &object, BPF_EXIST);
        } else {
            count(SLABWATCH_BPF_STACKS_LOST);
        }
    }
    if (object.stack_id >= 0) {
        struct slabwatch_bpf_stack zero_stack = {};
        struct slabwatch_bpf_stack_key stack_key = {.call_site = call_site, .stack_id = object.stack_id};
        struct slabwatch_bpf_stack *stack = entry(&stack_counts, &stack_key, &zero_stack);
        if (stack) {
            __sync_fetch_and_add(&stack->allocations, 1);
            __sync_fetch_and_add(&stack->net, 1);
        }
    }
    __sync_fetch_and_add(&site->net_count, 1);
    __sync_fetch_and_add(&site->net_bytes, (__s64)bytes);

    struct slabwatch_bpf_owner_key owner_key = {.call_site = call_site, .cgroup = object.cgroup, .memcg = object.memcg, .tgid = object.tgid};
    struct slabwatch_bpf_owner zero_owner = {};
    struct slabwatch_bpf_owner *owner = entry(&owners, &owner_key, &zero_owner);
    if (owner) {
        __sync_fetch_and_add(&owner->allocations, 1);
        __sync_fetch_and_add(&owner->net_count, 1);
        __sync_fetch_and_add(&owner->net_bytes, (__s64)bytes);
    } else {
        count(SLABWATCH_BPF_OWNERS_FULL);
    }
    if (!bpf_map_lookup_elem(&comms, &object.tgid)) {
        char comm[16];
        bpf_get_current_comm(comm, sizeof comm);
        bpf_map_update_elem(&comms, &object.tgid, comm, BPF_NOEXIST);
    }
}

static __always_inline void freed(const void *ptr) {
    __u64 address = (__u64)ptr;
    struct slabwatch_bpf_object *object = bpf_map_lookup_elem(&live, &address);
    if (!object) return;  // allocated before the session, or another cache's
    struct slabwatch_bpf_object copy = *object;
    // Only the CPU whose delete succeeds undoes the object (two frees race only in a buggy kernel).
    if (bpf_map_delete_elem(&live, &address) != 0) return;
    count(SLABWATCH_BPF_FREES);
    forget(&copy, 0);
}

SEC("tp_btf/kmem_cache_alloc")
int BPF_PROG(kmem_cache_alloc, unsigned long call_site, const void *ptr, struct kmem_cache *s, gfp_t gfp_flags, int node) {
    struct slabwatch_bpf_config *cfg = settings();
    if (!cfg || !ptr || !is_target(s, cfg)) return 0;
    allocated(ctx, call_site, ptr, BPF_CORE_READ(s, size), 0, cfg);
    return 0;
}

// A kmalloc-N session's allocations (by size and gfp class), or a large
// session's: every kmalloc above the largest cache, whatever its gfp class
// (SLUB counts them all in SUnreclaim). A large session attaches only this
// program and kfree.
SEC("tp_btf/kmalloc")
int BPF_PROG(kmalloc, unsigned long call_site, const void *ptr, size_t bytes_req, size_t bytes_alloc, gfp_t gfp_flags, int node) {
    struct slabwatch_bpf_config *cfg = settings();
    if (!cfg || !ptr) return 0;
    if (cfg->large_min) {
        if (bytes_alloc >= cfg->large_min) allocated(ctx, call_site, ptr, (__u32)bytes_alloc, 1, cfg);
        return 0;
    }
    if (cfg->kmalloc_size == 0 || bytes_alloc != cfg->kmalloc_size) return 0;
    if ((gfp_flags & cfg->gfp_mask) != cfg->gfp_value) return 0;
    allocated(ctx, call_site, ptr, (__u32)bytes_alloc, 0, cfg);
    return 0;
}

SEC("tp_btf/kmem_cache_free")
int BPF_PROG(kmem_cache_free, unsigned long call_site, const void *ptr, const struct kmem_cache *s) {
    // Until the target's pointer is known nothing of it was followed.
    if (!target_cache || (__u64)s != target_cache) return 0;
    freed(ptr);
    return 0;
}

// kfree names no cache: any kmalloc'ed object (and, since 6.4, any cache's)
// may come here. A lookup, not an event to user space.
SEC("tp_btf/kfree")
int BPF_PROG(kfree, unsigned long call_site, const void *ptr) {
    if (ptr) freed(ptr);
    return 0;
}
