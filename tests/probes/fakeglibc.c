/* fakeglibc: a library that defines gnu_get_libc_version as gcompat, the glibc
 * compatibility layer for musl, does: a musl process that loads it looks like glibc to a
 * lookup of that name. Built with musl-gcc -shared. */
const char *gnu_get_libc_version(void)
{
    return "2.8";
}
