/* deepstack: grows the main stack by MIB MiB, a page at a time, then exits 0.
 *
 *   deepstack MIB [--handler]
 *     --handler  install a SIGSEGV handler of its own first, on an alternate stack; the
 *                handler writes "own handler" to stderr and exits 42
 *
 * Under a lock on the main stack, each page the stack grows by counts against
 * RLIMIT_MEMLOCK: past it the kernel refuses the growth and the process gets SIGSEGV.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void own_handler(int sig)
{
    (void)sig;
    static const char text[] = "own handler\n";
    write(2, text, sizeof text - 1);
    _exit(42);
}

/* One page of stack per call; the volatile write makes the compiler keep the frame. */
static int down(size_t pages)
{
    volatile char page[4096];
    page[0] = (char)pages;
    page[sizeof page - 1] = 1;
    if (pages == 0)
        return page[0];
    return down(pages - 1) + page[sizeof page - 1];
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: deepstack MIB [--handler]\n");
        return 2;
    }
    size_t mib = strtoull(argv[1], NULL, 10);
    if (argc > 2 && !strcmp(argv[2], "--handler")) {
        static char altstack[64 << 10];
        stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack};
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = own_handler;
        sa.sa_flags = SA_ONSTACK;
        if (sigaltstack(&ss, NULL) || sigaction(SIGSEGV, &sa, NULL)) {
            perror("deepstack: sigaction");
            return 3;
        }
    }
    int sum = down(mib * 256);
    printf("reached %zu MiB (%d)\n", mib, sum);
    return 0;
}
