#ifndef SLABWATCH_CBPF_H
#define SLABWATCH_CBPF_H

// The BPF attribution session's loader: libbpf is loaded with dlopen when the
// first session starts (an idle daemon never maps it, and the binary does not
// link it), the program object is the one embedded at build time
// (attribution_object.h), and every BPF object of a session lives in file
// descriptors of this process — closed, or the process gone, they are gone.
#include <stddef.h>
#include <stdint.h>
#include "slabwatch_bpf_maps.h"

typedef struct slabwatch_bpf_session slabwatch_bpf_session;

// Loads libbpf.so.1 once; 1 when every function was found, else 0 and the
// reason in `why`. Safe to call again and from several threads.
int slabwatch_bpf_load(char *why, size_t size);

// Opens, verifies and attaches the programs for `config`, with room to follow
// `max_live_objects` objects. `btf_path`: BTF for CO-RE relocations, NULL for
// the kernel's own. NULL on failure: `*error` is the errno (EPERM/EACCES: not
// permitted) and `why` says which step failed, in one line.
slabwatch_bpf_session *slabwatch_bpf_start(const struct slabwatch_bpf_config *config, uint32_t max_live_objects,
                                           const char *btf_path, int *error, char *why, size_t size);

// Detaches the programs: counting stops, the maps stay readable.
void slabwatch_bpf_detach(slabwatch_bpf_session *session);

// Closes every descriptor of the session (programs, maps, links). NULL is fine.
void slabwatch_bpf_close(slabwatch_bpf_session *session);

// The session's counters, summed over CPUs, indexed by slabwatch_bpf_counter.
void slabwatch_bpf_counters(slabwatch_bpf_session *session, uint64_t counters[SLABWATCH_BPF_COUNTERS]);

// Copies at most `capacity` entries of a map into the arrays; returns how many.
int slabwatch_bpf_sites(slabwatch_bpf_session *session, uint64_t *call_sites, struct slabwatch_bpf_site *values, int capacity);
int slabwatch_bpf_owners(slabwatch_bpf_session *session, struct slabwatch_bpf_owner_key *keys,
                         struct slabwatch_bpf_owner *values, int capacity);
int slabwatch_bpf_stack_counts(slabwatch_bpf_session *session, struct slabwatch_bpf_stack_key *keys,
                               struct slabwatch_bpf_stack *values, int capacity);

// A sampled stack's return addresses, innermost first; returns how many.
int slabwatch_bpf_stack_frames(slabwatch_bpf_session *session, int32_t stack_id, uint64_t frames[SLABWATCH_BPF_STACK_DEPTH]);

// The command of `tgid` at its first allocation, NUL-terminated; 0 when unknown.
int slabwatch_bpf_comm(slabwatch_bpf_session *session, uint32_t tgid, char comm[16]);

#endif
