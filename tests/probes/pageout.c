/* pageout: ask the kernel to reclaim every mapping of another process now.
 *
 *   pageout PID
 *
 * Calls process_madvise(2) with MADV_PAGEOUT (Linux 5.10) once per mapping listed in
 * /proc/PID/maps, so that one mapping the kernel will not advise (VM_LOCKED ones, [vvar])
 * does not stop the others. Exits 0 when at least one mapping was advised, 1 when none
 * was, and 77 when the kernel has no pidfd_open or process_madvise (the test then skips).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

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
    int pidfd = syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) {
        fprintf(stderr, "pageout: pidfd_open: %s\n", strerror(errno));
        return errno == ENOSYS ? 77 : 1;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    FILE *maps = fopen(path, "r");
    if (!maps) {
        perror("pageout: maps");
        return 1;
    }
    unsigned long start, end;
    int advised = 0;
    char line[4096];
    while (fgets(line, sizeof line, maps)) {
        if (sscanf(line, "%lx-%lx", &start, &end) != 2)
            continue;
        struct iovec range = { (void *)start, end - start };
        if (syscall(SYS_process_madvise, pidfd, &range, 1, MADV_PAGEOUT, 0) >= 0)
            advised++;
        else if (errno == ENOSYS) {
            fprintf(stderr, "pageout: process_madvise: %s\n", strerror(errno));
            return 77;
        }
    }
    fclose(maps);
    return advised > 0 ? 0 : 1;
}
