//! Paths of the workspace's binaries, for tests that run them as a user would.

use std::path::PathBuf;

/// Path of a workspace binary built into the same target directory as this test (or
/// as this binary, for the harness's own binaries such as the demo).
///
/// `cargo test --workspace` (what `scripts/test.sh` runs) builds every package's
/// binaries; a test run of this package alone needs `cargo build --workspace --bins`
/// first, and the panic says so.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // A test: target/<profile>/deps/<test>-<hash> → target/<profile>/<name>; a binary:
    // target/<profile>/<bin> → target/<profile>/<name>.
    let dir = exe.parent().expect("an executable lives in a directory");
    let profile_dir = if dir.file_name().is_some_and(|d| d == "deps") {
        dir.parent().unwrap_or(dir)
    } else {
        dir
    };
    let bin = profile_dir.join(name);
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --workspace --bins` before this test",
        bin.display()
    );
    bin
}

/// Path of `linkmeter-agent`.
pub fn agent() -> PathBuf {
    workspace_bin("linkmeter-agent")
}

/// Path of `linkmeter-aggregator`.
pub fn aggregator() -> PathBuf {
    workspace_bin("linkmeter-aggregator")
}
