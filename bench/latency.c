/*
 * The latency section's periodic loop: how late a real-time-style loop runs when the memory it
 * works on can be taken away (bench/bench.py, `bench/run.sh --only latency`).
 *
 *   latency [--lock] [--fifo PRIO] [--slack NS] [--size MIB] [--pages N] [--period-us US]
 *           [--seconds S] [--samples FILE]
 *
 * At start it maps SIZE MiB of anonymous memory and writes every page once (the working set),
 * then runs a loop with a fixed period: sleep until the period's start (clock_nanosleep,
 * TIMER_ABSTIME, CLOCK_MONOTONIC), write one byte in each of N pages of the working set chosen
 * at random, and read the clock. How late that is against the period's start (the wake-up
 * latency plus the work) is one sample. A period that ends past the next period's start makes
 * the loop skip the periods it missed, as a real-time loop resynchronising would, and counts
 * them, instead of running them back to back with falling lateness.
 *
 * --lock calls mlockall(MCL_CURRENT|MCL_FUTURE) first thing in main, the program locking itself;
 * memlock-run --future does the same from its shim before main. --fifo sets SCHED_FIFO for the
 * loop where permitted, and says so on stdout when it is not. --slack sets the thread's timer
 * slack (prctl PR_SET_TIMERSLACK; SCHED_OTHER threads default to 50 us, SCHED_FIFO ones get 0).
 *
 * Prints one line of key=value pairs: periods, missed periods, the loop's own minor and major
 * faults (getrusage around the loop only), the policy in force, and VmLck, VmRSS and VmSwap at
 * the end; with --samples, every period's lateness in nanoseconds, one a line, into FILE.
 * Not a test: its figures depend on the machine and what else runs on it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define NSEC 1000000000LL

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NSEC + ts.tv_nsec;
}

/* xorshift64: cheap, and the same page sequence in every mode. */
static uint64_t next_random(uint64_t *state) {
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

static long status_kib(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long value = -1;
    size_t len = strlen(field);
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, len) == 0 && line[len] == ':') {
            value = strtol(line + len + 1, NULL, 10);
            break;
        }
    fclose(f);
    return value;
}

static void usage(void) {
    fprintf(stderr, "usage: latency [--lock] [--fifo PRIO] [--slack NS] [--size MIB] [--pages N] "
                    "[--period-us US] [--seconds S] [--samples FILE]\n");
    exit(2);
}

int main(int argc, char **argv) {
    int lock = 0, fifo = 0;
    long slack = -1, size_mib = 128, pages = 32, period_us = 1000;
    double seconds = 10;
    const char *samples_path = NULL;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(arg, "--lock") == 0) {
            lock = 1;
            continue;
        }
        if (!value)
            usage();
        i++;
        if (strcmp(arg, "--fifo") == 0)
            fifo = atoi(value);
        else if (strcmp(arg, "--slack") == 0)
            slack = atol(value);
        else if (strcmp(arg, "--size") == 0)
            size_mib = atol(value);
        else if (strcmp(arg, "--pages") == 0)
            pages = atol(value);
        else if (strcmp(arg, "--period-us") == 0)
            period_us = atol(value);
        else if (strcmp(arg, "--seconds") == 0)
            seconds = atof(value);
        else if (strcmp(arg, "--samples") == 0)
            samples_path = value;
        else
            usage();
    }
    if (size_mib <= 0 || pages <= 0 || period_us <= 0 || seconds <= 0)
        usage();

    if (lock && mlockall(MCL_CURRENT | MCL_FUTURE) != 0) {
        perror("latency: mlockall");
        return 1;
    }

    size_t size = (size_t)size_mib << 20, npages = size / PAGE;
    long max_periods = (long)(seconds * 1e6 / period_us) + 1;
    unsigned char *ws = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int64_t *late = mmap(NULL, max_periods * sizeof *late, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ws == MAP_FAILED || late == MAP_FAILED) {
        perror("latency: mmap");
        return 1;
    }
    /* Written once, so that every page of both is there (and, in RAM or not, the plain run's to lose). */
    for (size_t p = 0; p < npages; p++)
        ws[p * PAGE] = (unsigned char)p;
    memset(late, 0, max_periods * sizeof *late);

    if (slack >= 0 && prctl(PR_SET_TIMERSLACK, (unsigned long)slack, 0, 0, 0) != 0) {
        perror("latency: PR_SET_TIMERSLACK");
        return 1;
    }
    const char *policy = "other";
    if (fifo > 0) {
        struct sched_param param = {.sched_priority = fifo};
        if (sched_setscheduler(0, SCHED_FIFO, &param) == 0)
            policy = "fifo";
        else
            policy = errno == EPERM ? "other(fifo:EPERM)" : "other(fifo:error)";
    }

    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    int64_t period = period_us * 1000LL;
    long done = 0, missed = 0;
    struct rusage before, after;
    int64_t start = now_ns();
    getrusage(RUSAGE_SELF, &before);
    int64_t next = start + period, end = start + (int64_t)(seconds * NSEC);
    while (next <= end && done < max_periods) {
        struct timespec ts = {.tv_sec = next / NSEC, .tv_nsec = next % NSEC};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
            ;
        for (long k = 0; k < pages; k++)
            ws[(next_random(&rng) % npages) * PAGE + (k & 63)]++;
        int64_t finished = now_ns();
        late[done++] = finished - next;
        next += period;
        if (finished >= next) {
            int64_t behind = (finished - next) / period + 1;
            missed += behind;
            next += behind * period;
        }
    }
    getrusage(RUSAGE_SELF, &after);

    printf("periods=%ld missed=%ld minflt=%ld majflt=%ld policy=%s vmlck_kib=%ld vmrss_kib=%ld vmswap_kib=%ld\n",
           done, missed, after.ru_minflt - before.ru_minflt, after.ru_majflt - before.ru_majflt, policy,
           status_kib("VmLck"), status_kib("VmRSS"), status_kib("VmSwap"));
    fflush(stdout);
    if (samples_path) {
        FILE *f = fopen(samples_path, "w");
        if (!f) {
            perror("latency: samples file");
            return 1;
        }
        for (long i = 0; i < done; i++)
            fprintf(f, "%lld\n", (long long)late[i]);
        if (fclose(f) != 0) {
            perror("latency: samples file");
            return 1;
        }
    }
    return 0;
}
