/* othermalloc: a malloc that is not glibc's, as far as the dynamic linker can tell.
 *
 * Built as a shared library and put in LD_PRELOAD, it defines malloc, free, calloc and
 * realloc in an object of its own, as jemalloc or tcmalloc would, and hands the work to
 * glibc's internal entry points so that the program still runs normally.
 */
#include <stddef.h>

extern void *__libc_malloc(size_t size);
extern void __libc_free(void *p);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);

void *malloc(size_t size)
{
    return __libc_malloc(size);
}

void free(void *p)
{
    __libc_free(p);
}

void *calloc(size_t n, size_t size)
{
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
    return __libc_realloc(p, size);
}
