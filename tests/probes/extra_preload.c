/* extra_preload: a user's own LD_PRELOAD library, which memlock-run must keep.
 *
 * It does nothing but exist: the tests look for it in the target's /proc/PID/maps.
 */
int memlock_run_test_extra_preload_marker = 1;
