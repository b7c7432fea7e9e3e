/* lockreport: says whether its own memory is locked, from the kernel's VmLck, and exits 0:
 * "locked VmLck=N kB" or "UNLOCKED". Built static, musl, 32-bit... as a descendant image. */
#include <stdio.h>
#include <string.h>

int main(void)
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
    if (kb > 0)
        printf("locked VmLck=%ld kB\n", kb);
    else
        printf("UNLOCKED\n");
    return 0;
}
