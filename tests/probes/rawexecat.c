/* rawexecat: execs NAME relative to the directory DIR with the execveat system call itself,
 * not libc's execveat, so that no function of libc or of a preloaded library sees the exec
 * (as rawexec.c does for execve); with NAME empty, the file DIR itself, from a descriptor
 * opened with O_PATH (AT_EMPTY_PATH, as fexecve does):
 *   rawexecat DIR NAME [ARGS...]
 * "rawexecat: execveat: ERROR" on stderr and status 127 when the exec fails. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: rawexecat DIR NAME [ARGS...]\n");
        return 2;
    }
    int empty = argv[2][0] == '\0';
    int dir = open(argv[1], empty ? O_PATH : O_PATH | O_DIRECTORY);
    if (dir < 0) {
        perror("rawexecat: open");
        return 2;
    }
    syscall(SYS_execveat, dir, argv[2], argv + 2, environ, empty ? AT_EMPTY_PATH : 0);
    perror("rawexecat: execveat");
    return 127;
}
