// glibc declares memfd_create, MFD_* and the F_SEAL_* fcntl commands only for
// _GNU_SOURCE (the journal's native protocol passes large entries in a sealed
// memfd); it must come before the first system header.
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/mman.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
