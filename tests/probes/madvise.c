/* madvise: frees pages of a locked anonymous mapping with madvise(2), called through libc's
 * symbol as programs call it (the shim defines its own: preload-shim/src/wrap.rs), and says
 * what became of them.
 *
 *   madvise [--lock]
 *     --lock  lock itself first, mlockall(MCL_CURRENT | MCL_FUTURE), to show the kernel's own
 *             answer without the shim (exits 77, with a line on stderr, where it may not)
 *
 * It maps 24 pages, writes 'x' to each, prints "ready PID" and "map ADDR 24", and waits for
 * a line on standard input. Then it gives each advice to a part of its own, MADV_DONTNEED to
 * pages 4 to 11 and MADV_FREE to pages 12 to 19, first with the system call itself (what the
 * kernel says, whoever defines madvise), then through madvise(), and after each prints
 *   ADVICE-raw RESULT resident N of 8, kept N of 8   and   ADVICE RESULT resident ...
 * RESULT is ok or the errno's name; resident counts the part's pages in RAM (mincore(2),
 * before anything reads them), kept those that still read 'x'. Then
 *   rest resident N of 8, kept N of 8     for pages 0 to 3 and 20 to 23, advised nothing
 *   unaligned RESULT                      madvise(MADV_DONTNEED) one byte into the mapping
 * It waits for another line, writes 'y' to every page, prints "touched resident N of 24",
 * and exits 0 when standard input closes.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAGES 24
#define PART 8

static char *map;
static long page;

static const char *result(int rc)
{
    static char other[32];
    if (rc == 0)
        return "ok";
    if (errno == EINVAL)
        return "EINVAL";
    snprintf(other, sizeof other, "errno-%d", errno);
    return other;
}

/* Pages of [first, first + count) in RAM. */
static int resident(int first, int count)
{
    unsigned char vec[PAGES];
    if (mincore(map + first * page, count * page, vec) != 0) {
        perror("madvise: mincore");
        return -1;
    }
    int n = 0;
    for (int i = 0; i < count; i++)
        n += vec[i] & 1;
    return n;
}

/* Pages of [first, first + count) that still read 'x'. */
static int kept(int first, int count)
{
    int n = 0;
    for (int i = first; i < first + count; i++)
        n += ((volatile char *)map)[i * page] == 'x';
    return n;
}

static void report(const char *what, int rc, int first)
{
    const char *res = result(rc);
    int in_ram = resident(first, PART);
    printf("%s %s resident %d of %d, kept %d of %d\n", what, res, in_ram, PART, kept(first, PART),
           PART);
}

static void advise(const char *name, int advice, int first)
{
    char raw[32];
    snprintf(raw, sizeof raw, "%s-raw", name);
    report(raw, (int)syscall(SYS_madvise, map + first * page, PART * page, advice), first);
    report(name, madvise(map + first * page, PART * page, advice), first);
}

static int wait_line(void)
{
    char line[64];
    fflush(stdout);
    return fgets(line, sizeof line, stdin) != NULL;
}

int main(int argc, char **argv)
{
    page = sysconf(_SC_PAGESIZE);
    if (argc > 1 && !strcmp(argv[1], "--lock") && mlockall(MCL_CURRENT | MCL_FUTURE) != 0) {
        perror("madvise: cannot lock itself: mlockall");
        return 77;
    }
    map = mmap(NULL, PAGES * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) {
        perror("madvise: mmap");
        return 3;
    }
    for (int i = 0; i < PAGES; i++)
        map[i * page] = 'x';
    printf("ready %d\nmap %p %d\n", (int)getpid(), (void *)map, PAGES);
    if (!wait_line())
        return 0;
    advise("dontneed", MADV_DONTNEED, 4);
    advise("free", MADV_FREE, 12);
    int rest = resident(0, 4) + resident(20, 4);
    printf("rest resident %d of %d, kept %d of %d\n", rest, PART, kept(0, 4) + kept(20, 4),
           PART);
    printf("unaligned %s\n", result(madvise(map + 1, page, MADV_DONTNEED)));
    if (!wait_line())
        return 0;
    for (int i = 0; i < PAGES; i++)
        map[i * page] = 'y';
    printf("touched resident %d of %d\n", resident(0, PAGES), PAGES);
    fflush(stdout);
    char buf[64];
    while (read(0, buf, sizeof buf) > 0)
        ;
    return 0;
}
