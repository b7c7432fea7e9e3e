/* noprctl: an LD_PRELOAD library whose prctl(2) refuses PR_SET_DUMPABLE with EPERM, as a
 * seccomp filter or an intercepting runtime could; every other option goes to the kernel.
 * The shim must then stop the program rather than run it dumpable.
 */
#include <errno.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int prctl(int option, ...)
{
    va_list ap;
    va_start(ap, option);
    unsigned long a2 = va_arg(ap, unsigned long), a3 = va_arg(ap, unsigned long);
    unsigned long a4 = va_arg(ap, unsigned long), a5 = va_arg(ap, unsigned long);
    va_end(ap);
    if (option == PR_SET_DUMPABLE) {
        errno = EPERM;
        return -1;
    }
    return (int)syscall(SYS_prctl, option, a2, a3, a4, a5);
}
