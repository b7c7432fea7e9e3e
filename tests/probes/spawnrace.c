/* spawnrace: while one thread waits in system(3) (a spawn under way, its child long since
 * executed), the main thread forks and the child makes the execve system call itself:
 *   spawnrace PROGRAM
 * prints "raw exec failed: ERROR" when the exec is refused, or PROGRAM's output. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void *waiting(void *arg)
{
    (void)arg;
    system("sleep 1");
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    pthread_t thread;
    pthread_create(&thread, NULL, waiting, NULL);
    usleep(300 * 1000);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char *args[] = {argv[1], NULL};
        syscall(SYS_execve, argv[1], args, environ);
        printf("raw exec failed: %s\n", strerror(errno));
        fflush(stdout);
        _exit(126);
    }
    int status;
    waitpid(pid, &status, 0);
    pthread_join(thread, NULL);
    return 0;
}
