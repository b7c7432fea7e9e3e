/*
 * pageout PID: ask the kernel to reclaim every page of another process, from outside.
 *
 * process_madvise(2) (Linux 5.10) with MADV_PAGEOUT on every mapping of /proc/PID/maps, one
 * mapping per call: the kernel stops a call at the first mapping it refuses (locked mappings,
 * VM_PFNMAP ones such as [vvar]) with EINVAL, so a single call over all of them would leave
 * the rest untouched. Prints how many mappings were advised and how many refused, and why.
 *
 * Without swap, anonymous pages cannot be reclaimed: only clean file-backed pages mapped by
 * this process alone leave memory. Needs CAP_SYS_NICE and ptrace access to PID (root).
 *
 * Exit status: 0 when at least one mapping was advised, 1 when none was or on an error, 77
 * when the kernel has no pidfd_open or process_madvise (a test then skips). Used by the
 * integration tests (tests/locking.rs) and by the benchmarks (bench/run.sh).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_process_madvise
#define SYS_process_madvise 440
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: pageout PID\n");
        return 2;
    }
    int pid = atoi(argv[1]);
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) {
        fprintf(stderr, "pageout: pidfd_open: %s\n", strerror(errno));
        return errno == ENOSYS ? 77 : 1;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    FILE *maps = fopen(path, "r");
    if (!maps) {
        perror("pageout: /proc/PID/maps");
        return 1;
    }
    int advised = 0, refused = 0, first_errno = 0;
    unsigned long bytes = 0;
    char line[4096];
    while (fgets(line, sizeof line, maps)) {
        unsigned long start, end;
        if (sscanf(line, "%lx-%lx", &start, &end) != 2)
            continue;
        struct iovec iov = {.iov_base = (void *)start, .iov_len = end - start};
        if (syscall(SYS_process_madvise, pidfd, &iov, 1, MADV_PAGEOUT, 0) < 0) {
            if (errno == ENOSYS) {
                fprintf(stderr, "pageout: process_madvise: %s\n", strerror(errno));
                return 77;
            }
            refused++;
            if (!first_errno)
                first_errno = errno;
        } else {
            advised++;
            bytes += end - start;
        }
    }
    fclose(maps);
    printf("advised %d mappings (%lu KiB), refused %d (%s)\n", advised, bytes >> 10, refused,
           refused ? strerror(first_errno) : "-");
    return advised > 0 ? 0 : 1;
}
