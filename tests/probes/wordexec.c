/* wordexec: says the shim's word to the exec gate (protocol::GATE_WORD, GATE_EXEC: "this
 * thread's next exec was judged"), as the shim does before an exec it judged, then makes the
 * execve system call itself (as rawexec.c does):
 *   wordexec PROGRAM [ARGS...]
 * "wordexec: execve: ERROR" on stderr and status 127 when the exec fails. */
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

/* memlock_run_protocol::GATE_WORD and GATE_EXEC. */
#define GATE_WORD 0x4d4c5247
#define GATE_EXEC 1

extern char **environ;

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: wordexec PROGRAM [ARGS...]\n");
        return 2;
    }
    syscall(SYS_prctl, GATE_WORD, GATE_EXEC, 0, 0, 0);
    syscall(SYS_execve, argv[1], argv + 1, environ);
    perror("wordexec: execve");
    return 127;
}
