/* gatethief: tries to reach the run's exec gate (MEMLOCK_RUN_GATE=N:PID:R) as a process of
 * its tree may, once the gate is up (after 0.2 s: before, it holds memlock-run's descriptors
 * and the socket its listener comes through): PTRACE_SEIZE and PTRACE_ATTACH it, open its
 * /proc/PID/mem, take each of its first 256 descriptors with pidfd_getfd, looking for its
 * seccomp listener, and with --starve lower its limit of open files to none, or to N with
 * --starve=N (prlimit, which asks for no more than the gate's user). Then it execs PROGRAM,
 * if one is given, with the execve system call itself (past the shim).
 *   gatethief [--starve[=N]] [PROGRAM [ARGS...]]
 * One line each on stdout:
 *   gatethief: gate pid PID uid UID
 *   gatethief: seize: ERROR | TRACED
 *   gatethief: attach: ERROR | TRACED
 *   gatethief: mem: ERROR | OPENED
 *   gatethief: getfd: ERROR | LISTENER TAKEN (fd N) | N OTHER TAKEN
 *   gatethief: starve: ERROR | LOWERED
 * Status 3 if it finds no gate, 127 if the exec fails. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

extern char **environ;

static void say(const char *what, const char *taken, int ok, int err)
{
    if (ok)
        printf("gatethief: %s: %s\n", what, taken);
    else
        printf("gatethief: %s: %s\n", what, strerror(err));
}

int main(int argc, char **argv)
{
    const char *gate = getenv("MEMLOCK_RUN_GATE");
    const char *colon = gate ? strchr(gate, ':') : NULL;
    if (!colon) {
        printf("gatethief: no gate\n");
        return 3;
    }
    pid_t pid = (pid_t)atoi(colon + 1);
    usleep(200000);
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long uid = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "Uid:", 4))
            sscanf(line + 4, "%*s %ld", &uid);
    if (f)
        fclose(f);
    printf("gatethief: gate pid %d uid %ld\n", pid, uid);

    long rc = ptrace(PTRACE_SEIZE, pid, 0, 0);
    say("seize", "TRACED", rc == 0, errno);
    if (rc == 0) {
        ptrace(PTRACE_INTERRUPT, pid, 0, 0);
        waitpid(pid, NULL, __WALL);
        ptrace(PTRACE_DETACH, pid, 0, 0);
    }

    rc = ptrace(PTRACE_ATTACH, pid, 0, 0);
    say("attach", "TRACED", rc == 0, errno);
    if (rc == 0) {
        waitpid(pid, NULL, __WALL);
        ptrace(PTRACE_DETACH, pid, 0, 0);
    }

    snprintf(path, sizeof path, "/proc/%d/mem", pid);
    int mem = open(path, O_RDONLY);
    say("mem", "OPENED", mem >= 0, errno);

    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) {
        say("getfd", "", 0, errno);
    } else {
        int taken = 0, listener = -1, last = EBADF;
        for (int fd = 0; fd < 256; fd++) {
            int got = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
            if (got < 0) {
                if (errno != EBADF)
                    last = errno;
                continue;
            }
            taken++;
            char link[64], target[128];
            snprintf(link, sizeof link, "/proc/self/fd/%d", got);
            ssize_t n = readlink(link, target, sizeof target - 1);
            if (n > 0) {
                target[n] = 0;
                if (strstr(target, "seccomp"))
                    listener = fd;
                if (getenv("GATETHIEF_VERBOSE"))
                    fprintf(stderr, "gatethief: fd %d: %s\n", fd, target);
            }
            close(got);
        }
        if (listener >= 0)
            printf("gatethief: getfd: LISTENER TAKEN (fd %d)\n", listener);
        else if (taken)
            printf("gatethief: getfd: %d OTHER TAKEN\n", taken);
        else
            say("getfd", "", 0, last);
    }
    int arg = 1;
    if (argc > 1 && !strncmp(argv[1], "--starve", 8) && (!argv[1][8] || argv[1][8] == '=')) {
        arg++;
        rlim_t most = argv[1][8] == '=' ? (rlim_t)strtoul(argv[1] + 9, NULL, 10) : 0;
        struct rlimit limit = {most, most};
        rc = prlimit(pid, RLIMIT_NOFILE, &limit, NULL);
        say("starve", "LOWERED", rc == 0, errno);
    }
    fflush(stdout);
    if (arg >= argc)
        return 0;
    syscall(SYS_execve, argv[arg], argv + arg, environ);
    perror("gatethief: execve");
    return 127;
}
