/* bigbss: a program that maps 64 MiB of zeros (its .bss) and prints, without malloc or stdio
 * (which would need address space it may not have), two lines from /proc/self/status:
 *
 *   VmSize:  N kB
 *   VmLck:   N kB
 *
 * Under a tight RLIMIT_AS it needs far more than memlock-run does, so that the limit can be
 * set where memlock-run starts and ld.so cannot fit everything into the program.
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

static char big[64 << 20];

static void line_of(const char *text, const char *name)
{
    const char *at = strstr(text, name);
    if (at) {
        const char *end = strchr(at, '\n');
        if (end)
            (void)!write(1, at, (size_t)(end - at + 1));
    }
}

int main(void)
{
    static char text[8192];
    /* Keep the array: the compiler may not drop what it cannot see unused. */
    __asm__ volatile("" : : "r"(big) : "memory");
    int fd = open("/proc/self/status", O_RDONLY);
    if (fd < 0)
        return 3;
    ssize_t n = read(fd, text, sizeof text - 1);
    if (n <= 0)
        return 3;
    text[n] = 0;
    line_of(text, "VmSize:");
    line_of(text, "VmLck:");
    return 0;
}
