//! Link flags for the shim.
//!
//! `-z defs`: an unresolved symbol is a build error, not a failure inside someone else's
//! process. It is also how the shim proves it has no panic path: its panic handler calls
//! a symbol defined nowhere, so the link fails if any panic survives optimisation.
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,defs");
    // The shim runs no code from its stack: keep the process's stack non-executable.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,noexecstack");
}
