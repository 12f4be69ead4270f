#include "CBPF.h"
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attribution_object.h"

// The few libbpf functions used, declared here rather than taken from
// <bpf/libbpf.h>: the build needs no libbpf-dev, and the binary no libbpf.
// These are libbpf 1.x's stable ABI (LIBBPF_0.0.x to 1.0 symbol versions).
struct bpf_object;
struct bpf_program;
struct bpf_map;
struct bpf_link;
enum libbpf_print_level { LIBBPF_WARN, LIBBPF_INFO, LIBBPF_DEBUG };
typedef int (*libbpf_print_fn_t)(enum libbpf_print_level level, const char *format, va_list args);

// The leading fields of libbpf's struct bpf_object_open_opts (libbpf.h, 1.0
// onwards); `sz` tells libbpf how much of the struct we know.
struct open_options {
    size_t sz;
    const char *object_name;
    bool relaxed_maps;
    const char *pin_root_path;
    uint32_t unused_attach_prog_fd;
    const char *kconfig;
    const char *btf_custom_path;
};

#define LIBBPF_FUNCTIONS(F) \
    F(struct bpf_object *, bpf_object__open_mem, (const void *, size_t, const struct open_options *)) \
    F(int, bpf_object__load, (struct bpf_object *)) \
    F(void, bpf_object__close, (struct bpf_object *)) \
    F(struct bpf_map *, bpf_object__find_map_by_name, (const struct bpf_object *, const char *)) \
    F(struct bpf_program *, bpf_object__next_program, (const struct bpf_object *, struct bpf_program *)) \
    F(const char *, bpf_program__name, (const struct bpf_program *)) \
    F(struct bpf_link *, bpf_program__attach, (const struct bpf_program *)) \
    F(int, bpf_link__destroy, (struct bpf_link *)) \
    F(int, bpf_map__set_max_entries, (struct bpf_map *, uint32_t)) \
    F(int, bpf_map__fd, (const struct bpf_map *)) \
    F(int, bpf_map_update_elem, (int, const void *, const void *, uint64_t)) \
    F(int, bpf_map_lookup_elem, (int, const void *, void *)) \
    F(int, bpf_map_get_next_key, (int, const void *, void *)) \
    F(int, libbpf_num_possible_cpus, (void)) \
    F(libbpf_print_fn_t, libbpf_set_print, (libbpf_print_fn_t))

#define DECLARE(ret, name, args) static ret(*p_##name) args;
LIBBPF_FUNCTIONS(DECLARE)

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int loaded;
static char load_error[256];

static void load(void) {
    void *libbpf = dlopen("libbpf.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!libbpf) { snprintf(load_error, sizeof load_error, "%s (Debian: apt-get install libbpf1)", dlerror()); return; }
#define RESOLVE(ret, name, args) \
    if (!(p_##name = (ret(*) args)dlsym(libbpf, #name))) { \
        snprintf(load_error, sizeof load_error, "libbpf.so.1 has no %s (libbpf 1.0 or later is needed; restart slabwatch after upgrading it)", #name); \
        dlclose(libbpf); return; }
    LIBBPF_FUNCTIONS(RESOLVE)
    loaded = 1;
}

int slabwatch_bpf_load(char *why, size_t size) {
    pthread_once(&once, load);
    if (!loaded && size > 0) snprintf(why, size, "%s", load_error);
    return loaded;
}

// libbpf's messages (a verifier log, a failed relocation) would go to stderr;
// one is kept instead and becomes part of the one-line reason: the first about
// a program ("prog 'kfree': BPF program load failed: …") names the cause, else
// the first of all; the ones after it are consequences ("failed to load object").
static pthread_mutex_t message_lock = PTHREAD_MUTEX_INITIALIZER;
static char first_warning[256], program_warning[256];

static int keep_warning(enum libbpf_print_level level, const char *format, va_list args) {
    if (level != LIBBPF_WARN) return 0;
    char line[256];
    vsnprintf(line, sizeof line, format, args);
    line[strcspn(line, "\n")] = 0;
    if (!first_warning[0]) snprintf(first_warning, sizeof first_warning, "%s", line);
    if (!program_warning[0] && strstr(line, "prog '")) snprintf(program_warning, sizeof program_warning, "%s", line);
    return 0;
}

struct slabwatch_bpf_session {
    struct bpf_object *object;
    struct bpf_link *links[8];
    int link_count;
    int counters, sites, owners, stack_counts, stacks, comms;
};

static int map_fd(struct bpf_object *object, const char *name) {
    struct bpf_map *map = p_bpf_object__find_map_by_name(object, name);
    return map ? p_bpf_map__fd(map) : -1;
}

static slabwatch_bpf_session *fail(slabwatch_bpf_session *session, int code, int *error, char *why, size_t size,
                                   const char *step) {
    if (code == 0) code = EINVAL;
    *error = code;
    // Refused for want of privileges, libbpf's own guesses (RLIMIT_MEMLOCK, CONFIG_BPF_SYSCALL) only mislead.
    const char *warning = code == EPERM || code == EACCES ? "" : program_warning[0] ? program_warning : first_warning;
    if (warning[0]) snprintf(why, size, "%s: %s (%s)", step, strerror(code), warning);
    else snprintf(why, size, "%s: %s", step, strerror(code));
    p_libbpf_set_print(NULL);
    pthread_mutex_unlock(&message_lock);
    slabwatch_bpf_close(session);
    return NULL;
}

// Which programs a session runs: kmalloc only for a kmalloc-N or a large
// session (a named cache's spares every kmalloc a program run), the cache
// programs not for a large session (it matches no cache, and kmem_cache_alloc
// is the busiest kmem event), kfree always.
static int attached(const struct slabwatch_bpf_config *config, const char *program) {
    int large = config->large_min != 0;
    if (strcmp(program, "kmalloc") == 0) return large || config->kmalloc_size != 0;
    if (strncmp(program, "kmem_cache_", strlen("kmem_cache_")) == 0) return !large;
    return 1;
}

slabwatch_bpf_session *slabwatch_bpf_start(const struct slabwatch_bpf_config *config, uint32_t max_live_objects,
                                           const char *btf_path, int *error, char *why, size_t size) {
    if (!slabwatch_bpf_load(why, size)) { *error = ENOENT; return NULL; }
    slabwatch_bpf_session *session = calloc(1, sizeof *session);
    if (!session) { *error = ENOMEM; snprintf(why, size, "out of memory"); return NULL; }
    pthread_mutex_lock(&message_lock);
    first_warning[0] = program_warning[0] = 0;
    p_libbpf_set_print(keep_warning);
    struct open_options options = {.sz = sizeof options, .object_name = "slabwatch", .btf_custom_path = btf_path};
    session->object = p_bpf_object__open_mem(slabwatch_attribution_object, sizeof slabwatch_attribution_object, &options);
    if (!session->object) return fail(session, errno, error, why, size, "opening the BPF object");
    struct bpf_map *live = p_bpf_object__find_map_by_name(session->object, "live");
    if (!live || p_bpf_map__set_max_entries(live, max_live_objects) != 0) return fail(session, EINVAL, error, why, size, "sizing the live-object map");
    if (p_bpf_object__load(session->object) != 0) return fail(session, errno, error, why, size, "loading the BPF programs");
    int config_map = map_fd(session->object, "session_config");
    uint32_t zero = 0;
    if (config_map < 0 || p_bpf_map_update_elem(config_map, &zero, config, 0) != 0) return fail(session, errno, error, why, size, "writing the session's filter");
    session->counters = map_fd(session->object, "counters");
    session->sites = map_fd(session->object, "sites");
    session->owners = map_fd(session->object, "owners");
    session->stack_counts = map_fd(session->object, "stack_counts");
    session->stacks = map_fd(session->object, "stacks");
    session->comms = map_fd(session->object, "comms");
    for (struct bpf_program *program = p_bpf_object__next_program(session->object, NULL); program;
         program = p_bpf_object__next_program(session->object, program)) {
        if (!attached(config, p_bpf_program__name(program))) continue;
        struct bpf_link *link = p_bpf_program__attach(program);
        if (!link) return fail(session, errno, error, why, size, "attaching to the kmem tracepoints");
        if (session->link_count < (int)(sizeof session->links / sizeof session->links[0])) session->links[session->link_count++] = link;
    }
    p_libbpf_set_print(NULL);
    pthread_mutex_unlock(&message_lock);
    return session;
}

void slabwatch_bpf_detach(slabwatch_bpf_session *session) {
    if (!session) return;
    for (int i = 0; i < session->link_count; i++) p_bpf_link__destroy(session->links[i]);
    session->link_count = 0;
}

void slabwatch_bpf_close(slabwatch_bpf_session *session) {
    if (!session) return;
    slabwatch_bpf_detach(session);
    if (session->object) p_bpf_object__close(session->object);
    free(session);
}

void slabwatch_bpf_counters(slabwatch_bpf_session *session, uint64_t counters[SLABWATCH_BPF_COUNTERS]) {
    int cpus = p_libbpf_num_possible_cpus();
    if (cpus <= 0) cpus = 1;
    uint64_t *per_cpu = calloc((size_t)cpus, sizeof *per_cpu);
    for (uint32_t i = 0; i < SLABWATCH_BPF_COUNTERS; i++) {
        counters[i] = 0;
        if (per_cpu && p_bpf_map_lookup_elem(session->counters, &i, per_cpu) == 0) {
            for (int cpu = 0; cpu < cpus; cpu++) counters[i] += per_cpu[cpu];
        }
    }
    free(per_cpu);
}

// Walks a hash map with get_next_key: the maps read here are small (thousands).
static int copy_map(int fd, void *keys, size_t key_size, void *values, size_t value_size, int capacity) {
    int count = 0;
    char previous[64], next[64];
    const void *cursor = NULL;
    while (count < capacity && p_bpf_map_get_next_key(fd, cursor, next) == 0) {
        if (p_bpf_map_lookup_elem(fd, next, (char *)values + (size_t)count * value_size) == 0) {
            memcpy((char *)keys + (size_t)count * key_size, next, key_size);
            count++;
        }
        memcpy(previous, next, key_size);
        cursor = previous;
    }
    return count;
}

int slabwatch_bpf_sites(slabwatch_bpf_session *session, uint64_t *call_sites, struct slabwatch_bpf_site *values, int capacity) {
    return copy_map(session->sites, call_sites, sizeof *call_sites, values, sizeof *values, capacity);
}

int slabwatch_bpf_owners(slabwatch_bpf_session *session, struct slabwatch_bpf_owner_key *keys,
                         struct slabwatch_bpf_owner *values, int capacity) {
    return copy_map(session->owners, keys, sizeof *keys, values, sizeof *values, capacity);
}

int slabwatch_bpf_stack_counts(slabwatch_bpf_session *session, struct slabwatch_bpf_stack_key *keys,
                               struct slabwatch_bpf_stack *values, int capacity) {
    return copy_map(session->stack_counts, keys, sizeof *keys, values, sizeof *values, capacity);
}

int slabwatch_bpf_stack_frames(slabwatch_bpf_session *session, int32_t stack_id, uint64_t frames[SLABWATCH_BPF_STACK_DEPTH]) {
    uint32_t id = (uint32_t)stack_id;
    if (stack_id < 0 || p_bpf_map_lookup_elem(session->stacks, &id, frames) != 0) return 0;
    int count = 0;
    while (count < SLABWATCH_BPF_STACK_DEPTH && frames[count] != 0) count++;
    return count;
}

int slabwatch_bpf_comm(slabwatch_bpf_session *session, uint32_t tgid, char comm[16]) {
    if (p_bpf_map_lookup_elem(session->comms, &tgid, comm) != 0) return 0;
    comm[15] = 0;
    return 1;
}
