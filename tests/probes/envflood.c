/* envflood: execs PROGRAM with the execve system call itself (past the shim, as rawexec.c),
 * with this process's environment followed by COUNT pointers to one string, PREFIX padded
 * with 'x' to LENGTH bytes, then each TAIL entry: an environment padded past a reader's
 * bound, or amplified (one long string named many times), or with a name repeated.
 *   envflood COUNT LENGTH PREFIX [TAIL...] -- PROGRAM [ARGS...]
 * If the exec fails, it says how, how long the call took, and the peak memory of the run's
 * exec gate (MEMLOCK_RUN_GATE=N:PID:R) before and after, and exits 127:
 *   envflood: execve: ERROR (errno N) in US us; gate VmHWM BEFORE -> AFTER kB */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static long gate_hwm(void)
{
    const char *gate = getenv("MEMLOCK_RUN_GATE");
    const char *colon = gate ? strchr(gate, ':') : NULL;
    if (!colon)
        return -1;
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", atoi(colon + 1));
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6))
            sscanf(line + 6, "%ld", &kb);
    fclose(f);
    return kb;
}

int main(int argc, char **argv)
{
    int dash = 4;
    while (dash < argc && strcmp(argv[dash], "--") != 0)
        dash++;
    if (argc < 4 || dash + 1 >= argc) {
        fprintf(stderr, "usage: envflood COUNT LENGTH PREFIX [TAIL...] -- PROGRAM [ARGS...]\n");
        return 2;
    }
    long count = atol(argv[1]);
    size_t length = (size_t)atol(argv[2]);
    const char *prefix = argv[3];
    size_t own = 0;
    while (environ[own])
        own++;
    size_t tails = (size_t)(dash - 4);
    char **envp = malloc((own + (size_t)count + tails + 1) * sizeof *envp);
    char *padded = malloc(length + strlen(prefix) + 1);
    if (!envp || !padded) {
        perror("envflood: malloc");
        return 2;
    }
    strcpy(padded, prefix);
    for (size_t i = strlen(prefix); i < length; i++)
        padded[i] = 'x';
    padded[length > strlen(prefix) ? length : strlen(prefix)] = 0;
    size_t n = 0;
    for (size_t i = 0; i < own; i++)
        envp[n++] = environ[i];
    for (long i = 0; i < count; i++)
        envp[n++] = padded;
    for (size_t i = 0; i < tails; i++)
        envp[n++] = argv[4 + i];
    envp[n] = NULL;
    long before = gate_hwm();
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    syscall(SYS_execve, argv[dash + 1], argv + dash + 1, envp);
    int err = errno;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long us = (t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
    fprintf(stderr, "envflood: execve: %s (errno %d) in %ld us; gate VmHWM %ld -> %ld kB\n", strerror(err), err,
            us, before, gate_hwm());
    return 127;
}
