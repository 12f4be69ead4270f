// Linux calls Swift's Glibc module does not bring in. No library is linked
// for them.
// fstatfs(2): the sampler keeps a descriptor open only for a file of a procfs
// mount (see KeptFile).
#include <sys/vfs.h>
// eventfd(2): what wakes the sampler's ticking thread when it is cancelled
// (see ThreadTicker).
#include <sys/eventfd.h>
// getdents64(2), through syscall(2), which Swift cannot call (it is
// variadic): the cgroup walk lists each directory into one reused buffer,
// where opendir allocates a stream a directory. glibc's own wrapper is 2.30
// and later only.
#include <sys/syscall.h>
#include <unistd.h>
static inline long slabwatch_getdents64(int fd, void *buffer, unsigned long size) {
    return syscall(SYS_getdents64, fd, buffer, size);
}
