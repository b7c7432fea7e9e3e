//! Locking as the kernel reports it: VmLck, smaps Locked and the `lo` flag.

mod common;

use common::*;

#[test]
fn mcl_current_locks_what_is_mapped_at_start() {
    let probe = probe();
    let running = Running::start(memlock_run(["--".as_ref(), probe.as_os_str()]));
    assert_eq!(
        running.pid,
        running.child_pid(),
        "memlock-run execs in place: same PID"
    );
    let status = running.status();
    let maps = running.smaps();
    let text = maps
        .iter()
        .find(|m| m.name == probe.to_str().unwrap())
        .expect("the probe's own text mapping");
    assert!(
        text.locked_flag(),
        "the probe's text is VM_LOCKED: {text:?}"
    );
    assert!(
        status.bytes("VmLck") >= MIB,
        "VmLck {}",
        status.get("VmLck")
    );
    assert!(running.finish().status.success());
}
