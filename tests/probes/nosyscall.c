/* nosyscall: runs a command under a seccomp filter that fails one system call, as a container
 * runtime's profile or a hardened unit may:
 *   nosyscall ptrace COMMAND [ARGS...]    ptrace(2) fails with EPERM
 *   nosyscall seccomp COMMAND [ARGS...]   seccomp(2) fails with ENOSYS (as on a kernel built
 *                                         without it; this filter itself is installed with prctl)
 *   nosyscall populate-einval COMMAND...  madvise(2) with MADV_POPULATE_WRITE fails with EINVAL,
 *                                         as on a kernel before 5.14, which does not know it
 *   nosyscall populate-eperm COMMAND...   the same advice fails with EPERM
 *   nosyscall dumpable-ignored COMMAND... prctl(PR_SET_DUMPABLE) answers 0 and changes nothing, as
 *                                         an intercepting security module could
 *   nosyscall dumpable-eperm COMMAND...   prctl(PR_SET_DUMPABLE) fails with EPERM, and
 *                                         PR_GET_DUMPABLE answers 0 all the same */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    unsigned nr, error = 0;
    int populate = 0, dumpable = 0;
    unsigned set_action = SECCOMP_RET_ALLOW, get_action = SECCOMP_RET_ALLOW;
    if (!strcmp(argv[1], "populate-einval") || !strcmp(argv[1], "populate-eperm")) {
        nr = SYS_madvise;
        error = !strcmp(argv[1], "populate-einval") ? EINVAL : EPERM;
        populate = 1;
    } else if (!strcmp(argv[1], "dumpable-ignored")) {
        nr = SYS_prctl;
        dumpable = 1;
        set_action = SECCOMP_RET_ERRNO | 0;
    } else if (!strcmp(argv[1], "dumpable-eperm")) {
        nr = SYS_prctl;
        dumpable = 1;
        set_action = SECCOMP_RET_ERRNO | EPERM;
        get_action = SECCOMP_RET_ERRNO | 0;
    } else if (!strcmp(argv[1], "ptrace")) {
        nr = SYS_ptrace;
        error = EPERM;
    } else if (!strcmp(argv[1], "seccomp")) {
        nr = SYS_seccomp;
        error = ENOSYS;
    } else {
        fprintf(stderr, "nosyscall: ptrace, seccomp, populate-einval, populate-eperm, dumpable-ignored or dumpable-eperm, "
                        "not %s\n",
                argv[1]);
        return 2;
    }
    struct sock_filter any[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | error),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    /* The advice is the third argument; its low 32 bits are enough (little-endian). */
    struct sock_filter advice[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 23 /* MADV_POPULATE_WRITE */, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | error),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    /* The option is the first argument. SECCOMP_RET_ERRNO with 0 returns 0 without the call. */
    struct sock_filter option[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 5),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PR_SET_DUMPABLE, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, set_action),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PR_GET_DUMPABLE, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, get_action),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof any / sizeof any[0], any};
    if (dumpable)
        prog = (struct sock_fprog){sizeof option / sizeof option[0], option};
    if (populate)
        prog = (struct sock_fprog){sizeof advice / sizeof advice[0], advice};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
        perror("nosyscall: seccomp");
        return 2;
    }
    execvp(argv[2], argv + 2);
    perror("nosyscall: exec");
    return 127;
}
