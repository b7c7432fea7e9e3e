/* preloadexec: a library that, preloaded into a memlock-run process, executes PRELOADEXEC
 * (a path in the environment) with the execve system call from its constructor, before
 * memlock-run's own code runs: code of the tree's inside a nested memlock-run, which the exec
 * gate must not take for memlock-run's judgement. Built with -shared -fPIC. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
extern char **environ;
__attribute__((constructor)) static void preloadexec(void)
{
    const char *target = getenv("PRELOADEXEC");
    char self[64] = {0};
    if (!target || readlink("/proc/self/exe", self, sizeof self - 1) < 0 || !strstr(self, "memlock-run"))
        return;
    char *argv[] = {(char *)target, NULL};
    char *env[] = {NULL};
    syscall(SYS_execve, target, argv, env);
}
