/* contract: what a program sees of its own start, for the ptrace method's tests. Portable C
 * (glibc, musl, static, 32-bit): it reads /proc/self and prints one "key value" line each:
 *
 *   pid N          its PID (memlock-run's, when started through it)
 *   tracer N       TracerPid: 0 once the ptrace helper has detached
 *   sigchld 0|1    whether a SIGCHLD is pending (the test blocks SIGCHLD before exec)
 *   children none  waitpid(-1, WNOHANG) found no child of its own
 *   sigblk HEX     its blocked-signal mask
 *   fds LIST       its open descriptors
 *   vmlck KB       VmLck at main
 *   vmlck_after KB VmLck after it maps and touches --alloc MIB MiB (MCL_FUTURE at work)
 *
 *   contract [--mark FILE] [--alloc MIB] [--exit N | --raise SIG]
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static void field(const char *name, const char *key)
{
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");
    size_t n = strlen(name);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, name, n) && line[n] == ':') {
            char *v = line + n + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            v[strcspn(v, " \n")] = 0;
            printf("%s %s\n", key, v);
        }
    if (f)
        fclose(f);
}

int main(int argc, char **argv)
{
    size_t alloc = 0;
    int status = 0, sig = 0;
    for (int i = 1; i + 1 < argc; i++) {
        if (!strcmp(argv[i], "--alloc"))
            alloc = strtoull(argv[++i], NULL, 10) << 20;
        else if (!strcmp(argv[i], "--exit"))
            status = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--raise"))
            sig = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--mark"))
            close(open(argv[++i], O_WRONLY | O_CREAT | O_TRUNC, 0644));
    }
    sigset_t pending;
    sigpending(&pending);
    printf("pid %d\n", (int)getpid());
    field("TracerPid", "tracer");
    printf("sigchld %d\n", sigismember(&pending, SIGCHLD));
    int st;
    pid_t child = waitpid(-1, &st, WNOHANG | __WALL);
    printf("children %s\n", child == -1 && errno == ECHILD ? "none" : "some");
    field("SigBlk", "sigblk");
    printf("fds");
    DIR *d = opendir("/proc/self/fd");
    int own = d ? dirfd(d) : -1;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.' && atoi(e->d_name) != own)
            printf(" %s", e->d_name);
    if (d)
        closedir(d);
    printf("\n");
    field("VmLck", "vmlck");
    if (alloc) {
        char *p = mmap(NULL, alloc, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            perror("contract: mmap");
            return 3;
        }
        for (size_t off = 0; off < alloc; off += 4096)
            p[off] = 1;
        field("VmLck", "vmlck_after");
    }
    fflush(stdout);
    if (sig)
        raise(sig);
    return status;
}
