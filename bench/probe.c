/*
 * probe: the program every benchmark of bench/run.sh starts, one mode per measurement.
 *
 * Each mode does one thing and nothing else, so that two modes started side by side differ
 * only in that thing (a start that calls mlockall against one that does not, a stack
 * pre-fault by the kernel against the seeds' touch loop). It is not a test: it checks
 * what it must to avoid reporting nonsense (a failed mlockall exits 1) and no more.
 *
 *   probe exit                 start and exit (the plain program memlock-run is given)
 *   probe lock                 mlockall(MCL_CURRENT), exit: the self-locking program
 *   probe lock-future          mlockall(MCL_CURRENT|MCL_FUTURE), exit
 *   probe hold [lock]          print "ready", wait for EOF on stdin (for /proc/PID/status)
 *   probe stack-touch SIZE     the seeds' pattern: mlockall(MCL_CURRENT|MCL_FUTURE), then
 *                              a SIZE array on the stack written every 4096 bytes
 *   probe stack-mlock SIZE     grow the stack by SIZE with one write, then
 *                              mlockall(MCL_CURRENT), which populates it (the shim's way)
 *   probe stack-populate SIZE  mlockall(MCL_CURRENT), grow the stack by SIZE with one
 *                              write, then madvise(MADV_POPULATE_WRITE) over it
 *   probe heap-touch SIZE      the seeds' heap pattern: mlockall(MCL_CURRENT|MCL_FUTURE),
 *                              glibc told to keep its heap, malloc(SIZE), memset, free
 *   probe heap-mlock SIZE      glibc told to keep its heap, malloc(SIZE), free, then
 *                              mlockall(MCL_CURRENT), which populates it
 *   probe steady STACK HEAP ITERS [selflock PREFAULT]
 *                              malloc(HEAP), then ITERS rounds of touching STACK bytes of
 *                              stack and every page of the heap block; prints the minor
 *                              and major faults (getrusage) and nanoseconds of the rounds.
 *                              selflock: first mlockall(MCL_CURRENT|MCL_FUTURE) and the
 *                              seeds' touch loop over PREFAULT bytes of stack
 *   probe walk SIZE ITERS      malloc(SIZE) and write it, then ITERS rounds of 32 dependent
 *                              reads at random places in it (each address comes from the
 *                              value read before, so neither the CPU nor the compiler can
 *                              overlap them); prints the median, p99, p99.9 and worst
 *                              nanoseconds of a round. Under memlock-run --heap [--huge] the
 *                              block is the pre-faulted heap: 4 KiB pages against 2 MiB ones
 *   probe fragment LEAVE       fill all free memory but LEAVE bytes with 4 KiB pages (no huge
 *                              pages), then free every other page, so that free memory is in
 *                              4 KiB holes and a huge page needs compaction; print "ready",
 *                              hold it until EOF on stdin
 *   probe pressure FILE ANON   map FILE and read every page, malloc ANON bytes and write
 *                              every page, print "ready"; on a line on stdin touch it all
 *                              again and print the faults and nanoseconds that took; exit
 *                              on EOF
 *
 * SIZE is bytes with an optional K, M or G suffix.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL

static void die(const char *what)
{
    fprintf(stderr, "probe: %s: %s\n", what, strerror(errno));
    exit(1);
}

static size_t size_arg(const char *text)
{
    char *end;
    unsigned long long n = strtoull(text, &end, 10);
    switch (*end) {
    case 'K': n <<= 10; break;
    case 'M': n <<= 20; break;
    case 'G': n <<= 30; break;
    case '\0': break;
    default: fprintf(stderr, "probe: bad size %s\n", text); exit(2);
    }
    return (size_t)n;
}

static void lock(int flags)
{
    if (mlockall(flags) != 0)
        die("mlockall");
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The seeds' loop (000 and 001 in shared/seeds): a variable-length array written once per
 * page. Built with -fno-stack-clash-protection so that the compiler adds no probes of its
 * own: every page is faulted by this loop, in its order. */
static __attribute__((noinline)) void touch_stack(size_t size)
{
    volatile char buf[size] __attribute__((unused));
    for (size_t i = 0; i < size; i += PAGE)
        buf[i] = 0;
}

/* The lowest page of a stack grown by `size` below this frame, grown by one write to it: the
 * kernel extends the stack mapping down to the faulting address in one step. */
static __attribute__((noinline)) char *grow_stack(size_t size)
{
    uintptr_t here = (uintptr_t)__builtin_frame_address(0) & ~(PAGE - 1);
    char *low = (char *)(here - size);
    *(volatile char *)low = 0;
    return low;
}

static void keep_heap(void)
{
    /* As real-time guides do: no trimming, no mmap for large blocks, so the pages stay. */
    mallopt(M_TRIM_THRESHOLD, -1);
    mallopt(M_MMAP_MAX, 0);
}

static void faults(long *minflt, long *majflt)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *minflt = ru.ru_minflt;
    *majflt = ru.ru_majflt;
}

static void touch_pages(volatile char *p, size_t size)
{
    for (size_t i = 0; i < size; i += PAGE)
        p[i]++;
}

static int steady(int argc, char **argv)
{
    if (argc < 5)
        return 2;
    size_t stack = size_arg(argv[2]), heap = size_arg(argv[3]);
    long iters = atol(argv[4]);
    if (argc >= 7 && strcmp(argv[5], "selflock") == 0) {
        lock(MCL_CURRENT | MCL_FUTURE);
        touch_stack(size_arg(argv[6]));
    }
    char *block = malloc(heap);
    if (!block)
        die("malloc");
    long min0, maj0, min1, maj1;
    /* Clock first: its first call faults in the vDSO data page, which is no part of the loop. */
    uint64_t t0 = now_ns();
    faults(&min0, &maj0);
    for (long i = 0; i < iters; i++) {
        touch_stack(stack);
        touch_pages(block, heap);
    }
    faults(&min1, &maj1);
    uint64_t t1 = now_ns();
    printf("%ld %ld %llu\n", min1 - min0, maj1 - maj0, (unsigned long long)(t1 - t0));
    return 0;
}

static int pressure(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        die("open");
    struct stat st;
    if (fstat(fd, &st) != 0)
        die("fstat");
    size_t file_size = (size_t)st.st_size;
    volatile char *file = mmap(NULL, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (file == MAP_FAILED)
        die("mmap");
    close(fd);
    size_t anon_size = size_arg(argv[3]);
    char *anon = malloc(anon_size);
    if (!anon)
        die("malloc");
    volatile char sink = 0;
    for (size_t i = 0; i < file_size; i += PAGE)
        sink += file[i];
    touch_pages(anon, anon_size);
    printf("ready\n");
    fflush(stdout);
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        long min0, maj0, min1, maj1;
        uint64_t t0 = now_ns();
        faults(&min0, &maj0);
        for (size_t i = 0; i < file_size; i += PAGE)
            sink += file[i];
        touch_pages(anon, anon_size);
        faults(&min1, &maj1);
        uint64_t t1 = now_ns();
        printf("%ld %ld %llu\n", min1 - min0, maj1 - maj0, (unsigned long long)(t1 - t0));
        fflush(stdout);
    }
    (void)sink;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int walk(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    size_t size = size_arg(argv[2]);
    long iters = atol(argv[3]);
    size_t words = size / sizeof(uint64_t);
    if (iters <= 0 || words < 2)
        return 2;
    uint64_t *block = malloc(size);
    uint64_t *rounds = malloc((size_t)iters * sizeof *rounds);
    if (!block || !rounds)
        die("malloc");
    /* Every word holds a pseudo-random number: the next index is derived from it. */
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < words; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        block[i] = x;
    }
    uint64_t at = 1;
    for (long r = 0; r < iters; r++) {
        uint64_t t0 = now_ns();
        for (int k = 0; k < 32; k++)
            at = (block[at % words] + at * 0x5851f42d4c957f2dULL) >> 1;
        rounds[r] = now_ns() - t0;
    }
    qsort(rounds, (size_t)iters, sizeof *rounds, cmp_u64);
    printf("median %llu p99 %llu p99.9 %llu worst %llu sink %llu\n",
           (unsigned long long)rounds[iters / 2], (unsigned long long)rounds[iters * 99 / 100],
           (unsigned long long)rounds[iters * 999 / 1000], (unsigned long long)rounds[iters - 1],
           (unsigned long long)(at & 1));
    return 0;
}

static int fragment(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    size_t leave = size_arg(argv[2]);
    FILE *meminfo = fopen("/proc/meminfo", "r");
    if (!meminfo)
        die("/proc/meminfo");
    char line[128];
    unsigned long long free_kb = 0;
    while (fgets(line, sizeof line, meminfo))
        if (sscanf(line, "MemFree: %llu kB", &free_kb) == 1)
            break;
    fclose(meminfo);
    if (free_kb * 1024 <= leave) {
        fprintf(stderr, "probe: only %llu kB free, not more than the %zu bytes to leave\n", free_kb, leave);
        return 1;
    }
    size_t size = (free_kb * 1024 - leave) & ~(PAGE - 1);
    char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        die("mmap");
    if (madvise(p, size, MADV_NOHUGEPAGE) != 0)
        die("madvise(MADV_NOHUGEPAGE)");
    touch_pages(p, size);
    for (size_t off = PAGE; off < size; off += 2 * PAGE)
        if (madvise(p + off, PAGE, MADV_DONTNEED) != 0)
            die("madvise(MADV_DONTNEED)");
    printf("ready %zu\n", size);
    fflush(stdout);
    char c;
    while (read(0, &c, 1) > 0)
        ;
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "exit";
    size_t size = argc > 2 && strncmp(mode, "stack-", 6) == 0 ? size_arg(argv[2]) : 0;
    if (argc > 2 && strncmp(mode, "heap-", 5) == 0)
        size = size_arg(argv[2]);

    if (strcmp(mode, "exit") == 0)
        return 0;
    if (strcmp(mode, "lock") == 0) {
        lock(MCL_CURRENT);
        return 0;
    }
    if (strcmp(mode, "lock-future") == 0) {
        lock(MCL_CURRENT | MCL_FUTURE);
        return 0;
    }
    if (strcmp(mode, "hold") == 0) {
        if (argc > 2 && strcmp(argv[2], "lock") == 0)
            lock(MCL_CURRENT);
        /* write(2), not stdio: no stdout buffer is allocated after the lock. */
        if (write(1, "ready\n", 6) != 6)
            die("write");
        char c;
        while (read(0, &c, 1) > 0)
            ;
        return 0;
    }
    if (strcmp(mode, "stack-touch") == 0) {
        lock(MCL_CURRENT | MCL_FUTURE);
        touch_stack(size);
        return 0;
    }
    if (strcmp(mode, "stack-mlock") == 0) {
        grow_stack(size);
        lock(MCL_CURRENT);
        return 0;
    }
    if (strcmp(mode, "stack-populate") == 0) {
        lock(MCL_CURRENT);
        char *low = grow_stack(size);
        if (madvise(low, size, MADV_POPULATE_WRITE) != 0)
            die("madvise(MADV_POPULATE_WRITE)");
        return 0;
    }
    if (strcmp(mode, "heap-touch") == 0) {
        lock(MCL_CURRENT | MCL_FUTURE);
        keep_heap();
        char *p = malloc(size);
        if (!p)
            die("malloc");
        memset(p, 0, size);
        free(p);
        return 0;
    }
    if (strcmp(mode, "heap-mlock") == 0) {
        keep_heap();
        char *p = malloc(size);
        if (!p)
            die("malloc");
        free(p);
        lock(MCL_CURRENT);
        return 0;
    }
    if (strcmp(mode, "steady") == 0)
        return steady(argc, argv);
    if (strcmp(mode, "pressure") == 0)
        return pressure(argc, argv);
    if (strcmp(mode, "walk") == 0)
        return walk(argc, argv);
    if (strcmp(mode, "fragment") == 0)
        return fragment(argc, argv);
    fprintf(stderr, "probe: unknown mode %s\n", mode);
    return 2;
}
