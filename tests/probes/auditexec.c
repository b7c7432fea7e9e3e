/* auditexec: sets LD_AUDIT for the program it executes (not for itself: ld.so read its own
 * environment before main), then executes it with this environment, as a program that sets
 * a variable for its child does:
 *   auditexec libc|syscall AUDIT_LIBRARY PROGRAM [ARGS...]
 * libc: execv, which the shim judges; syscall: the execve system call itself, which only the
 * exec gate sees. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: auditexec libc|syscall AUDIT_LIBRARY PROGRAM [ARGS...]\n");
        return 2;
    }
    if (setenv("LD_AUDIT", argv[2], 1) != 0) {
        perror("auditexec: setenv");
        return 2;
    }
    if (!strcmp(argv[1], "syscall"))
        syscall(SYS_execve, argv[3], argv + 3, environ);
    else
        execv(argv[3], argv + 3);
    perror("auditexec: execve");
    return 127;
}
