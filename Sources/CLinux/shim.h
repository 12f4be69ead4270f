// Linux calls Swift's Glibc module does not bring in. No library is linked
// for them.
// fstatfs(2): the sampler keeps a descriptor open only for a file of a procfs
// mount (see KeptFile).
#include <sys/vfs.h>
// eventfd(2): what wakes the sampler's ticking thread when it is cancelled
// (see ThreadTicker).
#include <sys/eventfd.h>
