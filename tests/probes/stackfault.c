/* stackfault: writes one byte at a chosen depth below the top of the main stack, so that a
 * test can have the kernel refuse a stack growth for a reason of its choosing.
 *
 *   stackfault KIB [--block KIB]
 *     KIB          how far below the end of the [stack] mapping (from /proc/self/maps) to write
 *     --block KIB  first map one read-only page that far below the end: a write at its depth
 *                  is an access fault, not a growth, and the stack cannot grow into the guard
 *                  gap above it
 *
 * Exits 0 when the write went through (the stack grew that far at once).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: stackfault KIB [--block KIB]\n");
        return 2;
    }
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[512];
    unsigned long start = 0, end = 0;
    while (maps && fgets(line, sizeof line, maps))
        if (strstr(line, "[stack]") && sscanf(line, "%lx-%lx", &start, &end) == 2)
            break;
    if (!end) {
        fprintf(stderr, "stackfault: no [stack] in /proc/self/maps\n");
        return 3;
    }
    if (argc > 3 && !strcmp(argv[2], "--block")) {
        char *at = (char *)(end - (strtoul(argv[3], NULL, 10) << 10));
        if (mmap(at, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) != at) {
            perror("stackfault: mmap --block");
            return 3;
        }
    }
    volatile char *at = (volatile char *)(end - (strtoul(argv[1], NULL, 10) << 10));
    *at = 1;
    printf("wrote %s KiB below the top of the stack\n", argv[1]);
    return 0;
}
