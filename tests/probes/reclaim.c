/* reclaim: a process with pages the kernel has reclaimed, for memlock-run --status tests.
 *
 * It writes MIB MiB to FILE (and syncs it, so that its pages are clean), maps the file,
 * reads every page, and asks the kernel to reclaim them with madvise(MADV_PAGEOUT)
 * (Linux 5.4). Clean file pages need no swap to be reclaimed; locked ones are never
 * reclaimed (the kernel refuses MADV_PAGEOUT on a locked mapping with EINVAL, which is
 * fine here). Then it prints "ready PID" and waits for its standard input to close.
 *
 *   reclaim FILE MIB
 *
 * Exits 77 with a line on stderr when the kernel has no MADV_PAGEOUT.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

/* VmLck from /proc/self/status, in kB. */
static long vm_lck(void)
{
    char line[256];
    long kb = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmLck: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: reclaim FILE MIB\n");
        return 2;
    }
    size_t size = strtoull(argv[2], NULL, 10) << 20;
    int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        perror("reclaim: open");
        return 3;
    }
    static char block[1 << 16];
    memset(block, 'x', sizeof block);
    for (size_t done = 0; done < size; done += sizeof block)
        if (write(fd, block, sizeof block) != (ssize_t)sizeof block) {
            perror("reclaim: write");
            return 3;
        }
    if (fsync(fd) != 0) {
        perror("reclaim: fsync");
        return 3;
    }
    volatile char *p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        perror("reclaim: mmap");
        return 3;
    }
    unsigned sum = 0;
    for (size_t off = 0; off < size; off += 4096)
        sum += p[off];
    if (madvise((void *)p, size, MADV_PAGEOUT) != 0) {
        if (errno == EINVAL && vm_lck() == 0) {
            fprintf(stderr, "reclaim: this kernel has no MADV_PAGEOUT (Linux 5.4)\n");
            return 77;
        }
        if (errno != EINVAL) {
            perror("reclaim: madvise");
            return 3;
        }
    }
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    char buf[64];
    while (read(0, buf, sizeof buf) > 0)
        ;
    return sum == 0;
}
