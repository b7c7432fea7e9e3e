/* probe: a small dynamically linked program for memlock-run's integration tests.
 *
 * It prints "ready PID" once main runs (after the shim's constructor), then waits for its
 * standard input to close, so that a test can read /proc/PID while it holds still.
 *
 *   probe [--mark FILE] [--map MIB] [--touch MIB] [--exit N]
 *     --mark FILE  create FILE at once: proof that the probe ran (refusal tests check it did not)
 *     --map MIB    after start, mmap MIB MiB of anonymous memory (not touched)
 *     --touch MIB  then write to the first MIB MiB of it
 *     --reserve MIB  after start, mmap MIB MiB PROT_NONE (an address-space reservation, as
 *                  mariadbd, a JVM or Go make: counted in VmLck under MCL_FUTURE, never resident)
 *     --exit N     exit with status N at once, without waiting
 *     --echo       write back each line read from standard input, as "got LINE"
 *     --threads N  start N threads that sleep, before "ready"
 *     --attr-stack KIB  give those threads KIB KiB stacks through pthread_attr_setstacksize
 *     --nproc N    first lower RLIMIT_NPROC to N (a thread is a process to it)
 *     --as-room KIB  first lower RLIMIT_AS to VmSize and KIB KiB more
 *   Other words not starting with "--" are ignored: as a #! interpreter, the probe is
 *   given the script's path.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

static void *sleeper(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

int main(int argc, char **argv)
{
    size_t map = 0, touch = 0, reserve = 0;
    int echo = 0, threads = 0;
    size_t attr_stack = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--mark") && i + 1 < argc) {
            int fd = open(argv[++i], O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0) {
                perror("probe: --mark");
                return 4;
            }
            close(fd);
        } else if (!strcmp(argv[i], "--exit") && i + 1 < argc)
            return atoi(argv[++i]);
        else if (!strcmp(argv[i], "--echo"))
            echo = 1;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--attr-stack") && i + 1 < argc)
            attr_stack = strtoull(argv[++i], NULL, 10) << 10;
        else if (!strcmp(argv[i], "--nproc") && i + 1 < argc) {
            rlim_t n = strtoull(argv[++i], NULL, 10);
            struct rlimit lim = {n, n};
            if (setrlimit(RLIMIT_NPROC, &lim)) {
                perror("probe: --nproc");
                return 4;
            }
        } else if (!strcmp(argv[i], "--as-room") && i + 1 < argc) {
            rlim_t room = strtoull(argv[++i], NULL, 10) << 10, size = 0;
            char line[128];
            FILE *status = fopen("/proc/self/status", "r");
            while (status && fgets(line, sizeof line, status))
                if (sscanf(line, "VmSize: %llu kB", (unsigned long long *)&size) == 1)
                    break;
            struct rlimit lim = {(size << 10) + room, (size << 10) + room};
            if (!size || setrlimit(RLIMIT_AS, &lim)) {
                perror("probe: --as-room");
                return 4;
            }
        } else if (!strcmp(argv[i], "--map") && i + 1 < argc)
            map = strtoull(argv[++i], NULL, 10) << 20;
        else if (!strcmp(argv[i], "--reserve") && i + 1 < argc)
            reserve = strtoull(argv[++i], NULL, 10) << 20;
        else if (!strcmp(argv[i], "--touch") && i + 1 < argc)
            touch = strtoull(argv[++i], NULL, 10) << 20;
        else if (strncmp(argv[i], "--", 2) != 0)
            continue;
        else {
            fprintf(stderr, "probe: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    if (map) {
        char *p = mmap(NULL, map, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            perror("probe: mmap");
            return 3;
        }
        for (size_t off = 0; off < touch && off < map; off += 4096)
            p[off] = 1;
    }
    if (reserve && mmap(NULL, reserve, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0) ==
                       MAP_FAILED) {
        perror("probe: mmap --reserve");
        return 3;
    }
    for (int t = 0; t < threads; t++) {
        pthread_t id;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        if (attr_stack)
            pthread_attr_setstacksize(&attr, attr_stack);
        int err = pthread_create(&id, attr_stack ? &attr : NULL, sleeper, NULL);
        pthread_attr_destroy(&attr);
        if (err) {
            errno = err;
            perror("probe: pthread_create");
            return 3;
        }
    }
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    char buf[64];
    ssize_t n;
    while ((n = read(0, buf, sizeof buf)) > 0)
        if (echo) {
            printf("got %.*s", (int)n, buf);
            fflush(stdout);
        }
    if (n < 0) {
        perror("probe: read");
        return 5;
    }
    return 0;
}
