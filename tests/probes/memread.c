/* memread: read another process's memory the way a same-user snooper would.
 *
 *   memread PID ADDR
 *     opens /proc/PID/mem and preads one byte at ADDR (hexadecimal, as /proc/PID/maps
 *     writes it). Prints "read XX" (the byte, in hex) and exits 0, or "open ERRNO" /
 *     "pread ERRNO" (EACCES, EPERM, EIO or the number) and exits 1.
 *
 * The kernel lets the open through only when the reader may ptrace the process
 * (PTRACE_MODE_ATTACH): same user and a dumpable target, or CAP_SYS_PTRACE.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char *name(int err)
{
    static char buf[16];
    switch (err) {
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EIO: return "EIO";
    case ENOENT: return "ENOENT";
    }
    snprintf(buf, sizeof buf, "%d", err);
    return buf;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: memread PID ADDR\n");
        return 2;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/%s/mem", argv[1]);
    off_t addr = (off_t)strtoull(argv[2], NULL, 16);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        printf("open %s\n", name(errno));
        return 1;
    }
    unsigned char byte;
    ssize_t n = pread(fd, &byte, 1, addr);
    if (n != 1) {
        printf("pread %s\n", n < 0 ? name(errno) : "short");
        return 1;
    }
    printf("read %02x\n", byte);
    return 0;
}
