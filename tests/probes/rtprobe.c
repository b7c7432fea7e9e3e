/* rtprobe: a real-time style program that counts its own page faults.
 *
 * Start-up, not measured: create and join the worker threads once, as a real-time program
 * starts its threads before its time-critical loop (glibc keeps the stacks of joined
 * threads in a cache and hands them to the next threads of the same stack size).
 * Steady state, measured with getrusage(RUSAGE_SELF) around each part, ROUNDS times:
 *   stack    recurse STACK KiB deep into the main thread's stack;
 *   heap     malloc blocks from 64 bytes to 4 MiB until HEAP MiB are live, write them, free them;
 *   threads  create THREADS threads, each recursing 64 KiB deep and mallocing, and join them;
 *   calls    (with --first-calls) call libc functions this process has not called before.
 * Output: "thread-stack BYTES" (the default stack size of new threads), then one line per part
 * and a total: "PART minor N major N".
 *
 *   rtprobe [--stack KIB] [--heap MIB] [--threads N] [--rounds N] [--first-calls]
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <wchar.h>

static size_t stack_kib = 6 << 10, heap_mib = 32, threads = 4, rounds = 3;

struct faults {
    long minor, major;
};

static struct faults now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (struct faults){ru.ru_minflt, ru.ru_majflt};
}

/* One KiB of stack per level; the buffer is used after the call so it cannot be elided. */
static int __attribute__((noinline)) recurse(size_t kib)
{
    volatile char frame[1000];
    frame[0] = (char)kib;
    frame[sizeof frame - 1] = (char)kib;
    if (kib <= 1)
        return frame[0];
    return recurse(kib - 1) + frame[sizeof frame - 1];
}

static void heap_round(void)
{
    static const size_t sizes[] = {64, 1 << 10, 16 << 10, 256 << 10, 1 << 20, 4 << 20};
    static void *blocks[4096];
    size_t live = 0, n = 0;
    for (size_t i = 0; live < (heap_mib << 20) && n < sizeof blocks / sizeof *blocks; i++) {
        size_t size = sizes[i % (sizeof sizes / sizeof *sizes)];
        char *p = malloc(size);
        if (!p) {
            perror("rtprobe: malloc");
            exit(3);
        }
        memset(p, (int)i, size);
        blocks[n++] = p;
        live += size;
    }
    while (n > 0)
        free(blocks[--n]);
}

static void *worker(void *arg)
{
    (void)arg;
    recurse(64);
    char *small = malloc(1000), *large = malloc(200 << 10);
    if (!small || !large) {
        perror("rtprobe: malloc in a thread");
        exit(3);
    }
    memset(small, 1, 1000);
    memset(large, 1, 200 << 10);
    free(large);
    free(small);
    return NULL;
}

static void threads_round(void)
{
    pthread_t ids[64];
    size_t n = threads < 64 ? threads : 64;
    for (size_t i = 0; i < n; i++) {
        int err = pthread_create(&ids[i], NULL, worker, NULL);
        if (err) {
            fprintf(stderr, "rtprobe: pthread_create: %s\n", strerror(err));
            exit(3);
        }
    }
    for (size_t i = 0; i < n; i++)
        pthread_join(ids[i], NULL);
}

/* Functions nothing above calls: their first call goes through lazy binding. */
static void first_calls(void)
{
    volatile long sink = 0;
    sink += (long)wcslen(L"memlock");
    sink += strverscmp("1.10", "1.9");
    sink += (long)strtold("2.5", NULL);
    sink += ffsll(1LL << 40);
    sink += (long)memrchr("abcabc", 'a', 6);
    (void)sink;
}

static void report(const char *part, struct faults sum)
{
    printf("%s minor %ld major %ld\n", part, sum.minor, sum.major);
}

int main(int argc, char **argv)
{
    int calls = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--stack") && i + 1 < argc)
            stack_kib = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--heap") && i + 1 < argc)
            heap_mib = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--first-calls"))
            calls = 1;
        else {
            fprintf(stderr, "rtprobe: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    pthread_attr_t attr;
    size_t thread_stack = 0;
    if (pthread_getattr_default_np(&attr) == 0) {
        pthread_attr_getstacksize(&attr, &thread_stack);
        pthread_attr_destroy(&attr);
    }
    printf("thread-stack %zu\n", thread_stack);
    /* Start-up: threads once, and stdout's buffer allocated before anything is measured. */
    threads_round();
    printf("rtprobe: stack %zu KiB, heap %zu MiB, %zu threads, %zu rounds\n", stack_kib, heap_mib, threads,
           rounds);
    fflush(stdout);

    struct faults stack = {0, 0}, heap = {0, 0}, thr = {0, 0}, call = {0, 0};
    struct faults before, after;
#define MEASURE(sum, work)                                                                                   \
    do {                                                                                                   \
        before = now();                                                                                    \
        work;                                                                                              \
        after = now();                                                                                     \
        sum.minor += after.minor - before.minor;                                                           \
        sum.major += after.major - before.major;                                                           \
    } while (0)
    if (calls)
        MEASURE(call, first_calls());
    for (size_t r = 0; r < rounds; r++) {
        MEASURE(stack, recurse(stack_kib));
        MEASURE(heap, heap_round());
        MEASURE(thr, threads_round());
    }
    report("stack", stack);
    report("heap", heap);
    report("threads", thr);
    if (calls)
        report("calls", call);
    report("total", (struct faults){stack.minor + heap.minor + thr.minor + call.minor,
                                    stack.major + heap.major + thr.major + call.major});
    return 0;
}
