/* vforkexec: runs PROGRAM COUNT times from vfork(2) children, through execv(3) (which the
 * shim wraps), and prints the parent's VmSize before and after, in kB:
 *   vforkexec COUNT PROGRAM
 * "vmsize BEFORE AFTER", then exits 0 if every child exited 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static long vmsize(void)
{
    char line[256];
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmSize:", 7))
            kb = atol(line + 7);
    fclose(f);
    return kb;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    int count = atoi(argv[1]), failed = 0;
    char *args[] = {argv[2], NULL};
    long before = vmsize();
    for (int i = 0; i < count; i++) {
        pid_t child = vfork();
        if (child == 0) {
            execv(argv[2], args);
            _exit(127);
        }
        int status;
        if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status))
            failed = 1;
    }
    printf("vmsize %ld %ld\n", before, vmsize());
    return failed;
}
