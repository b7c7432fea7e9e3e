/* chrootexec: changes its root to DIR (and its working directory to the new root), then
 * makes the execve system call itself, as static programs do:
 *   chrootexec DIR PROGRAM
 * "chrootexec: execve: ERROR" on stderr and status 126 when the exec fails. */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    if (chroot(argv[1]) || chdir("/")) {
        perror("chrootexec: chroot");
        return 2;
    }
    char *args[] = {argv[2], NULL};
    syscall(SYS_execve, argv[2], args, environ);
    perror("chrootexec: execve");
    return 126;
}
