/* memfdexec: copies PROGRAM into a memfd and executes it from there, as loaders of packed or
 * downloaded programs do: no path on any filesystem names what runs.
 *   memfdexec libc|syscall PROGRAM [ARGS...]
 * libc: fexecve(3) (which the shim judges); syscall: the execveat system call itself with
 * AT_EMPTY_PATH (which only the exec gate sees). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: memfdexec libc|syscall PROGRAM [ARGS...]\n");
        return 2;
    }
    int in = open(argv[2], O_RDONLY | O_CLOEXEC);
    int fd = memfd_create("memfdexec", 0);
    if (in < 0 || fd < 0) {
        perror("memfdexec: open or memfd_create");
        return 2;
    }
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0)
        if (write(fd, buf, (size_t)n) != n) {
            perror("memfdexec: write");
            return 2;
        }
    close(in);
    if (strcmp(argv[1], "libc") == 0)
        fexecve(fd, argv + 2, environ);
    else
        syscall(SYS_execveat, fd, "", argv + 2, environ, AT_EMPTY_PATH);
    perror("memfdexec: exec");
    return 127;
}
