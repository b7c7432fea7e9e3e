/* crash_ctor: a user's LD_PRELOAD library whose constructor crashes (SIGSEGV) in COMMAND, as
 * a buggy preload would, before the program's own code runs. memlock-run's own process is
 * spared: only COMMAND has memlock-run's settings (MEMLOCK_RUN_FLAGS) in its environment.
 */
#include <stdlib.h>

__attribute__((constructor)) static void crash(void)
{
    if (getenv("MEMLOCK_RUN_FLAGS"))
        *(volatile int *)0 = 1;
}
