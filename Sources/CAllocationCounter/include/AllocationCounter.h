#ifndef SLABWATCH_ALLOCATION_COUNTER_H
#define SLABWATCH_ALLOCATION_COUNTER_H

/// Heap allocations (malloc, calloc, realloc, posix_memalign, aligned_alloc,
/// memalign) made by this process since it started. Only slabwatch-bench
/// links this target: it replaces the allocator's entry points for the whole
/// process, which the daemon must never do.
unsigned long long slabwatch_allocation_count(void);

#endif
