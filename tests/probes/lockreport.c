/* lockreport: says whether its own memory is locked, from the kernel's VmLck, and exits 0:
 *   locked VmLck=N kB dumpable=D argv0=NAME argc=N preload=LD_PRELOAD
 * or the same starting UNLOCKED. Built static, musl, 32-bit... as a descendant image. */
#include <stdio.h>
#include <stdlib.h>
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
    const char *preload = getenv("LD_PRELOAD");
    printf("%s VmLck=%ld kB dumpable=%d argv0=%s argc=%d preload=%s\n", kb > 0 ? "locked" : "UNLOCKED",
           kb, prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), argc > 0 ? argv[0] : "(none)", argc,
           preload ? preload : "(unset)");
    return 0;
}
