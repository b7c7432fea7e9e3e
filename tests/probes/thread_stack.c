/* thread_stack: prints the stack size a new thread gets by default, then exits.
 *
 * glibc sizes thread stacks from the soft RLIMIT_STACK it finds at start, so raising that
 * limit for --prefault would enlarge every thread; the shim restores the old default.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>

static void *report(void *unused)
{
    pthread_attr_t attr;
    size_t size = 0;
    (void)unused;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        pthread_attr_getstacksize(&attr, &size);
        pthread_attr_destroy(&attr);
    }
    printf("thread stack %zu\n", size);
    return NULL;
}

int main(void)
{
    pthread_t thread;
    if (pthread_create(&thread, NULL, report, NULL) != 0) {
        perror("thread_stack: pthread_create");
        return 3;
    }
    pthread_join(thread, NULL);
    return 0;
}
