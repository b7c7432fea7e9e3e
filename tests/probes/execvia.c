/* execvia: executes a program through one of libc's exec or spawn functions, or the raw
 * system call, as programs do:
 *   execvia MODE PROGRAM [ARGS...]
 * MODE: execve execv execvp execvpe execl execle execlp fexecve execveat posix_spawn
 *       posix_spawnp syscall, or
 *       altstack (execve from a signal handler running on an alternate stack of 8 KiB, as
 *         crash reporters do),
 *       spawn_in (posix_spawn with a file action that changes to the directory PROGRAM
 *         names, then runs ARGS[0] from there),
 *       system, popen (PROGRAM is then the shell command; each prints its result),
 *       execveat_empty_path (execveat with AT_EMPTY_PATH and a path),
 *       fexecve_path (fexecve of an O_PATH descriptor),
 *       nofds (execv with every descriptor the process may open taken, close-on-exec, as a
 *         busy server's may be),
 *       eintr (execv with errno EINTR, left by a pause a signal interrupted),
 *       execl140 (execl with 140 arguments "x" after PROGRAM's name),
 *       noargv (execve with a null argument list),
 *       noname (execve with an empty argv[0] and an empty environment),
 *       spawn3 (posix_spawn three times, then lines saying how many descriptors were open,
 *         and the VmSize in kB, before and after).
 * The spawn modes wait and exit with the child's status. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static pid_t pid;
static char **handler_args;

static void exec_from_handler(int sig)
{
    (void)sig;
    execve(handler_args[0], handler_args, environ);
    _exit(126);
}

/* This process's VmSize, in kB. */
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

/* How many descriptors this process has open. */
static int open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static void interrupted(int sig)
{
    (void)sig;
}

/* Called after the spawn (an argument list's order of evaluation is unspecified). */
static int waited(int rc)
{
    int status;
    if (rc != 0) {
        fprintf(stderr, "execvia: spawn: %s\n", strerror(rc));
        return 126;
    }
    if (waitpid(pid, &status, 0) < 0)
        return 126;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: execvia MODE PROGRAM [ARGS...]\n");
        return 2;
    }
    const char *mode = argv[1], *prog = argv[2];
    char **args = argv + 2;
    /* execl and kin take the arguments one by one: up to eight are passed. */
    const char *a[9] = {0};
    for (int i = 0; i < 8 && args[i]; i++)
        a[i] = args[i];
    if (!strcmp(mode, "execve"))
        execve(prog, args, environ);
    else if (!strcmp(mode, "execv"))
        execv(prog, args);
    else if (!strcmp(mode, "execvp"))
        execvp(prog, args);
    else if (!strcmp(mode, "execvpe"))
        execvpe(prog, args, environ);
    else if (!strcmp(mode, "execl"))
        execl(prog, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], (char *)NULL);
    else if (!strcmp(mode, "execle"))
        execle(prog, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], (char *)NULL, environ);
    else if (!strcmp(mode, "execlp"))
        execlp(prog, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], (char *)NULL);
    else if (!strcmp(mode, "fexecve")) {
        int fd = open(prog, O_RDONLY);
        if (fd >= 0)
            fexecve(fd, args, environ);
    } else if (!strcmp(mode, "fexecve_path")) {
        /* A descriptor that only names the file: one its user may execute but not read. */
        int fd = open(prog, O_PATH);
        if (fd >= 0)
            fexecve(fd, args, environ);
    } else if (!strcmp(mode, "execveat"))
        execveat(AT_FDCWD, prog, args, environ, 0);
    else if (!strcmp(mode, "execveat_empty_path"))
        /* AT_EMPTY_PATH with a path, as a generic wrapper may pass it: the path is used. */
        execveat(AT_FDCWD, prog, args, environ, AT_EMPTY_PATH);
    else if (!strcmp(mode, "posix_spawn"))
        return waited(posix_spawn(&pid, prog, NULL, NULL, args, environ));
    else if (!strcmp(mode, "system")) {
        int rc = system(prog);
        printf("system=%d errno=%s\n", rc, rc == -1 ? strerror(errno) : "-");
        return 0;
    } else if (!strcmp(mode, "popen")) {
        FILE *f = popen(prog, "r");
        printf("popen=%s errno=%s\n", f ? "ok" : "NULL", f ? "-" : strerror(errno));
        if (f)
            pclose(f);
        return 0;
    } else if (!strcmp(mode, "spawn_in")) {
        posix_spawn_file_actions_t actions;
        if (argc < 4 || posix_spawn_file_actions_init(&actions) ||
            posix_spawn_file_actions_addchdir_np(&actions, prog))
            return 2;
        return waited(posix_spawn(&pid, args[1], &actions, NULL, args + 1, environ));
    } else if (!strcmp(mode, "posix_spawnp"))
        return waited(posix_spawnp(&pid, prog, NULL, NULL, args, environ));
    else if (!strcmp(mode, "altstack")) {
        /* 8 KiB above a guard page: a judgement that needs more stack dies of SIGSEGV. */
        char *area = mmap(NULL, 4096 + 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        stack_t ss = {.ss_sp = area + 4096, .ss_size = 8192};
        if (area == MAP_FAILED || mprotect(area, 4096, PROT_NONE))
            return 125;
        struct sigaction sa = {.sa_handler = exec_from_handler, .sa_flags = SA_ONSTACK};
        handler_args = args;
        if (sigaltstack(&ss, NULL) || sigaction(SIGUSR1, &sa, NULL))
            return 125;
        raise(SIGUSR1);
    } else if (!strcmp(mode, "execl140")) {
        /* execl with 140 arguments after PROGRAM's name: more than the shim keeps on its stack. */
#define X10 "x", "x", "x", "x", "x", "x", "x", "x", "x", "x"
        execl(prog, prog, X10, X10, X10, X10, X10, X10, X10, X10, X10, X10, X10, X10, X10, X10,
              (char *)NULL);
#undef X10
    } else if (!strcmp(mode, "spawn3")) {
        /* posix_spawn three times, waiting for each, then says whether descriptors piled up. */
        long size = vmsize();
        int before = open_fds(), rc = 0;
        for (int i = 0; i < 3 && rc == 0; i++)
            rc = waited(posix_spawn(&pid, prog, NULL, NULL, args, environ));
        printf("fds before=%d after=%d\n", before, open_fds());
        printf("vmsize before=%ld after=%ld\n", size, vmsize());
        return rc;
    } else if (!strcmp(mode, "noname")) {
        /* An empty argv[0], and an empty environment. */
        char *name[] = {"", NULL}, *none[] = {NULL};
        execve(prog, name, none);
    } else if (!strcmp(mode, "noargv")) {
        /* No argument list at all (argv NULL), which Linux takes for an empty one. */
        char **volatile none = NULL;
        execve(prog, none, environ);
    } else if (!strcmp(mode, "eintr")) {
        /* execv with errno left at EINTR by a wait a signal interrupted, as a shell's may be. */
        struct sigaction sa = {.sa_handler = interrupted};
        struct itimerval tick = {.it_value = {.tv_usec = 10000}};
        if (sigaction(SIGALRM, &sa, NULL) || setitimer(ITIMER_REAL, &tick, NULL))
            return 125;
        if (pause() != -1 || errno != EINTR)
            return 125;
        execv(prog, args);
    } else if (!strcmp(mode, "nofds")) {
        /* A small RLIMIT_NOFILE filled up: the exec's own open for judging fails with EMFILE;
         * the new image has them back (close-on-exec). */
        struct rlimit nofile;
        if (getrlimit(RLIMIT_NOFILE, &nofile))
            return 125;
        if (nofile.rlim_cur > 32)
            nofile.rlim_cur = 32;
        if (setrlimit(RLIMIT_NOFILE, &nofile))
            return 125;
        while (open("/dev/null", O_RDONLY | O_CLOEXEC) >= 0)
            ;
        if (errno != EMFILE)
            return 125;
        execv(prog, args);
    } else if (!strcmp(mode, "syscall"))
        syscall(SYS_execve, prog, args, environ);
    else {
        fprintf(stderr, "execvia: unknown mode %s\n", mode);
        return 2;
    }
    perror("execvia");
    return 126;
}
