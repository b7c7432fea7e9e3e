# memlock-run %postun: on erase ($1 = 0, not on upgrade), remove the package's own
# directories, which the package cannot list as its own (see launcher/Cargo.toml). rmdir
# leaves a directory that still holds something.
if [ "$1" = 0 ]; then
    rmdir /usr/lib64/memlock-run /usr/share/doc/memlock-run/examples /usr/share/doc/memlock-run 2>/dev/null || :
fi
