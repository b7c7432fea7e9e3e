#[test]
fn t() {
    let out = std::process::Command::new(env!("CARGO"))
        .args(["build", "-p", "memlock-run-shim", "-p", "memlock-run"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    println!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success());
}
