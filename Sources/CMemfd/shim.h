// memfd_create(2), for the journal's native protocol (large entries go as a
// sealed memfd). glibc declares it only under _GNU_SOURCE, and defining that
// here would give this module other definitions of glibc's types (fd_set's
// members) than Swift's Glibc module has: a fresh build then fails on them,
// depending on which module clang builds first. So the declaration is ours,
// and this module is nothing else: no library is linked for it.
extern int memfd_create(const char *name, unsigned int flags);
