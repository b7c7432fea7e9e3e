/* audit: an LD_AUDIT library that keeps memlock-run's shim out: its la_objsearch refuses any
 * library whose name holds "memlock_run_shim", and ld.so then skips the preload with a
 * warning and runs the program without it. Built with -shared -fPIC. */
#define _GNU_SOURCE
#include <link.h>
#include <stdint.h>
#include <string.h>

unsigned int la_version(unsigned int version)
{
    return version < LAV_CURRENT ? version : LAV_CURRENT;
}

char *la_objsearch(const char *name, uintptr_t *cookie, unsigned int flag)
{
    (void)cookie;
    (void)flag;
    return strstr(name, "memlock_run_shim") ? NULL : (char *)name;
}
