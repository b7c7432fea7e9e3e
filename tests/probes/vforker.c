/* vforker: prints "ready PID", then vforks a child that sleeps SECONDS before it exits, so
 * that the parent waits in the kernel (uninterruptible, not stoppable by ptrace) meanwhile;
 * then the parent exits 0.  vforker SECONDS */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    unsigned seconds = argc > 1 ? (unsigned)atoi(argv[1]) : 5;
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    pid_t child = vfork();
    if (child == 0) {
        sleep(seconds);
        _exit(0);
    }
    return child < 0;
}
