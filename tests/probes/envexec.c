/* envexec: execs a program with exactly the environment given, duplicates and all, as a
 * program that builds its own envp may (a mapping whose keys repeat a name).
 *   envexec NAME=VALUE... -- PROGRAM [ARGS...] */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int i = 1;
    while (i < argc && strcmp(argv[i], "--") != 0)
        i++;
    if (i + 1 >= argc) {
        fprintf(stderr, "usage: envexec NAME=VALUE... -- PROGRAM [ARGS...]\n");
        return 2;
    }
    argv[i] = NULL;
    execve(argv[i + 1], argv + i + 1, argv + 1);
    perror("envexec: execve");
    return 127;
}
