# memlock-run %post: give /usr/bin/memlock-run the owner, mode and file capability that
# /etc/default/memlock-run asks for (by default root:root 0755, no capability). rpm has just
# written a fresh file, which has no capability, so this runs on every install and upgrade.
if ! /usr/sbin/memlock-run-privilege apply; then
    echo "memlock-run: the setting in /etc/default/memlock-run could not be applied (see the message above)." >&2
    echo "memlock-run: memlock-run is installed, but members of its group cannot lock past their limit;" >&2
    echo "memlock-run: fix the cause, then run: memlock-run-privilege apply" >&2
fi
