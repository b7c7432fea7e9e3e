/* euidexec: sets its effective user ID alone (its real one stays), then executes a program
 * with the execve system call itself, past any preload, as a daemon that lowered its
 * effective ID for a while might:
 *   euidexec EUID PROGRAM [ARGS...] */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: euidexec EUID PROGRAM [ARGS...]\n");
        return 2;
    }
    if (setresuid(-1, (uid_t)atol(argv[1]), -1) != 0) {
        perror("euidexec: setresuid");
        return 2;
    }
    syscall(SYS_execve, argv[2], argv + 2, environ);
    perror("euidexec: execve");
    return 127;
}
