/* lockreport: says whether its own memory is locked, from the kernel's VmLck, and exits 0:
 *   locked VmLck=N kB dumpable=D argv0=NAME argc=N
 * or the same starting UNLOCKED. Built static, musl, 32-bit... as a descendant image. */
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

int main(int argc, char **argv)
{
    char line[256];
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 3;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmLck:", 6))
            sscanf(line + 6, "%ld", &kb);
    fclose(f);
    printf("%s VmLck=%ld kB dumpable=%d argv0=%s argc=%d\n", kb > 0 ? "locked" : "UNLOCKED", kb,
           prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), argc > 0 ? argv[0] : "(none)", argc);
    return 0;
}
