/* secbits: run a program with securebits set, for memlock-run's tests.
 *
 *   secbits BITS PROGRAM [ARGS...]
 *
 * BITS is a number (0x40 is SECBIT_NO_CAP_AMBIENT_RAISE); setting securebits needs
 * CAP_SETPCAP. util-linux setpriv cannot set the ambient bits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: secbits BITS PROGRAM [ARGS...]\n");
        return 2;
    }
    if (prctl(PR_SET_SECUREBITS, strtoul(argv[1], NULL, 0), 0, 0, 0) != 0) {
        perror("secbits: prctl(PR_SET_SECUREBITS)");
        return 3;
    }
    execv(argv[2], argv + 2);
    perror("secbits: execv");
    return 127;
}
