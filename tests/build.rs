//! Builds the fake NVML library (`fake_nvml/fake_nvml.c`) the GPU tests load.
//!
//! Three variants, each a shared library named `libnvidia-ml.so.1` (the name nvml-wrapper
//! dlopens) with a `libnvidia-ml.so` symlink beside it:
//!
//! - `$OUT_DIR/fake_nvml/`: every symbol the GPU collector uses (`FAKE_NVML_DIR`);
//! - `$OUT_DIR/fake_nvml_partial/`: the same without `nvmlDeviceGetPowerUsage`
//!   (`FAKE_NVML_PARTIAL_DIR`);
//! - `$OUT_DIR/fake_nvml_no_shutdown/`: without `nvmlShutdown`, which nvml-wrapper's
//!   `Drop` would call unchecked (`FAKE_NVML_NO_SHUTDOWN_DIR`).
//!
//! The compiler comes from the `cc` crate (so `CC` and friends are honoured); linking a
//! shared object is a single `cc -shared` call, which `cc::Build` itself does not offer.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

const SOURCE: &str = "fake_nvml/fake_nvml.c";
const LIB_NAME: &str = "libnvidia-ml.so.1";
const LINK_NAME: &str = "libnvidia-ml.so";

fn main() {
    println!("cargo:rerun-if-changed={SOURCE}");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let source = manifest_dir.join(SOURCE);

    let full = out_dir.join("fake_nvml");
    build_variant(&source, &full, &[]);
    println!("cargo:rustc-env=FAKE_NVML_DIR={}", full.display());

    let partial = out_dir.join("fake_nvml_partial");
    build_variant(&source, &partial, &["-DFAKE_NVML_NO_POWER"]);
    println!(
        "cargo:rustc-env=FAKE_NVML_PARTIAL_DIR={}",
        partial.display()
    );

    let no_shutdown = out_dir.join("fake_nvml_no_shutdown");
    build_variant(&source, &no_shutdown, &["-DFAKE_NVML_NO_SHUTDOWN"]);
    println!(
        "cargo:rustc-env=FAKE_NVML_NO_SHUTDOWN_DIR={}",
        no_shutdown.display()
    );
}

/// Compiles and links one variant into `dir/libnvidia-ml.so.1` plus its symlink.
fn build_variant(source: &Path, dir: &Path, defines: &[&str]) {
    fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    let lib = dir.join(LIB_NAME);

    let compiler = cc::Build::new()
        .cargo_metadata(false)
        .pic(true)
        .get_compiler();
    let mut cmd = compiler.to_command();
    cmd.args([
        "-shared",
        "-std=c11",
        "-fvisibility=hidden",
        "-Wall",
        "-Wextra",
    ])
    .args(defines)
    .arg(format!("-Wl,-soname,{LIB_NAME}"))
    .arg("-o")
    .arg(&lib)
    .arg(source)
    .args(["-lpthread", "-ldl"]);
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("running the C compiler ({cmd:?}): {e}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "building the fake NVML library failed ({cmd:?}):\n{stderr}"
    );
    for line in stderr.lines().filter(|l| l.contains("warning")) {
        println!("cargo:warning=fake_nvml: {line}");
    }

    let link = dir.join(LINK_NAME);
    match fs::remove_file(&link) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("removing {}: {e}", link.display()),
    }
    std::os::unix::fs::symlink(LIB_NAME, &link)
        .unwrap_or_else(|e| panic!("linking {}: {e}", link.display()));
}
