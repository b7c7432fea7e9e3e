//! memlock-run's integration tests live in this package's `[[test]]` targets (one file per
//! area, helpers in `common/`). They start real processes and read /proc; `cargo test
//! --workspace` builds memlock-run and its shim and runs them.
