/* wordflood: fills the exec gate's table of the shim's words (protocol::GATE_WORD), as a
 * tree may: THREADS threads each say that their next exec was judged (GATE_EXEC) and then
 * wait without executing anything; then the main thread says it SAMPLES times more, timing
 * each, and execs PROGRAM with the execve system call itself (past the shim).
 *   wordflood THREADS SAMPLES PROGRAM [ARGS...]
 * On stderr: "wordflood: N of THREADS words refused (errno E); SAMPLES words took at most
 * US us, median US us". Exits 127 if the exec fails. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define GATE_WORD 0x4d4c5247L
#define GATE_EXEC 1L

extern char **environ;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t said_cond = PTHREAD_COND_INITIALIZER;
static long said, refused;
static int refused_errno;

static void *say(void *unused)
{
    (void)unused;
    long rc = syscall(SYS_prctl, GATE_WORD, GATE_EXEC, 0L, 0L, 0L);
    int err = errno;
    pthread_mutex_lock(&lock);
    said++;
    if (rc != 0) {
        refused++;
        refused_errno = err;
    }
    pthread_cond_signal(&said_cond);
    pthread_mutex_unlock(&lock);
    for (;;)
        pause();
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: wordflood THREADS SAMPLES PROGRAM [ARGS...]\n");
        return 2;
    }
    long threads = atol(argv[1]), samples = atol(argv[2]);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    for (long i = 0; i < threads; i++) {
        pthread_t t;
        if (pthread_create(&t, &attr, say, NULL) != 0) {
            fprintf(stderr, "wordflood: pthread_create %ld failed\n", i);
            return 2;
        }
    }
    pthread_mutex_lock(&lock);
    while (said < threads)
        pthread_cond_wait(&said_cond, &lock);
    pthread_mutex_unlock(&lock);
    long *took = calloc((size_t)samples + 1, sizeof *took);
    for (long i = 0; i < samples; i++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        syscall(SYS_prctl, GATE_WORD, GATE_EXEC, 0L, 0L, 0L);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        took[i] = (t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
    }
    qsort(took, (size_t)samples, sizeof *took, cmp);
    fprintf(stderr, "wordflood: %ld of %ld words refused (errno %d); %ld words took at most %ld us, median %ld us\n",
            refused, threads, refused_errno, samples, samples ? took[samples - 1] : 0,
            samples ? took[samples / 2] : 0);
    syscall(SYS_execve, argv[3], argv + 3, environ);
    perror("wordflood: execve");
    return 127;
}
