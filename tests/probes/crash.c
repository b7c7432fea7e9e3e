/* crash: holds a secret in its heap, then abort()s, as a program with a bug would.
 *
 * A core dump of it holds SECRET (below), so a test can tell a core that leaks the secret
 * from no core at all.
 */
#include <stdlib.h>
#include <string.h>

#define SECRET "memlock-run-test-secret-4f1c"

int main(void)
{
    char *secret = malloc(sizeof SECRET);
    if (!secret)
        return 3;
    memcpy(secret, SECRET, sizeof SECRET);
    /* Keep the copy: the compiler may not drop a write it cannot see read. */
    __asm__ volatile("" : : "r"(secret) : "memory");
    abort();
}
