/* rawexec: execs a program with the execve system call itself, not libc's execve, so that
 * no function of libc or of a preloaded library sees the exec: the new image gets this
 * process's environment as it is, LD_PRELOAD and all.
 *   rawexec PROGRAM [ARGS...] */
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: rawexec PROGRAM [ARGS...]\n");
        return 2;
    }
    syscall(SYS_execve, argv[1], argv + 1, environ);
    perror("rawexec: execve");
    return 127;
}
