/* forkprobe: forks once, so that tests can see what a fork(2) child of a locked program gets.
 *
 * The child maps and writes MAP MiB of anonymous memory after the fork (locked only if the
 * child has MCL_FUTURE again), prints "ready CHILD_PID", and waits for standard input to
 * close. The parent waits for the child and prints "child status N" (its exit status, or
 * 128 + the signal that ended it).
 *
 *   forkprobe [--reserve MIB] [--map MIB]
 *     --reserve MIB  before forking, map MIB MiB with PROT_NONE: address space that counts
 *                    towards the RLIMIT_MEMLOCK check of mlockall(MCL_CURRENT) without being
 *                    locked, so that a child's relock can fail where the parent's did not
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    size_t reserve = 0, map = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reserve") && i + 1 < argc)
            reserve = strtoull(argv[++i], NULL, 10) << 20;
        else if (!strcmp(argv[i], "--map") && i + 1 < argc)
            map = strtoull(argv[++i], NULL, 10) << 20;
        else {
            fprintf(stderr, "forkprobe: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    if (reserve && mmap(NULL, reserve, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0) == MAP_FAILED) {
        perror("forkprobe: mmap reserve");
        return 3;
    }
    fflush(stdout);
    pid_t child = fork();
    if (child < 0) {
        perror("forkprobe: fork");
        return 3;
    }
    if (child == 0) {
        char *p = mmap(NULL, map, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            perror("forkprobe: mmap in the child");
            _exit(3);
        }
        memset(p, 1, map);
        printf("ready %d\n", (int)getpid());
        fflush(stdout);
        char buf[64];
        while (read(0, buf, sizeof buf) > 0)
            ;
        _exit(0);
    }
    int status;
    if (waitpid(child, &status, 0) < 0) {
        perror("forkprobe: waitpid");
        return 3;
    }
    printf("child status %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    return 0;
}
