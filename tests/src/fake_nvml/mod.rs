//! Fake NVML: a small C library (`tests/fake_nvml/fake_nvml.c`, built by `build.rs`)
//! exporting the NVML symbols the GPU collector uses, under the name nvml-wrapper
//! dlopens (`libnvidia-ml.so.1`).
//!
//! The library reads `key=value` settings at `nvmlInit_v2` from the file named by
//! `FAKE_NVML_CONFIG`, or else from `fake_nvml.conf` beside itself; see the C file for
//! the keys. NVML state is per loaded library, and the dynamic loader shares one
//! instance per file, so [`FakeNvml`] copies the library into its own temporary
//! directory next to its config: tests using different `FakeNvml`s can run in parallel
//! threads of one process without seeing each other's settings.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// File name nvml-wrapper 0.13 dlopens on Linux when no path is given.
pub const LIBRARY_NAME: &str = "libnvidia-ml.so.1";
/// Name of the config file the library looks for beside itself.
pub const CONFIG_NAME: &str = "fake_nvml.conf";
/// The environment variable naming the config file (takes precedence).
pub const CONFIG_ENV: &str = "FAKE_NVML_CONFIG";

/// `NVML_ERROR_NOT_SUPPORTED`.
pub const NVML_ERROR_NOT_SUPPORTED: u32 = 3;
/// `NVML_ERROR_NO_PERMISSION`.
pub const NVML_ERROR_NO_PERMISSION: u32 = 4;
/// `NVML_ERROR_DRIVER_NOT_LOADED`.
pub const NVML_ERROR_DRIVER_NOT_LOADED: u32 = 9;
/// `NVML_ERROR_GPU_IS_LOST`.
pub const NVML_ERROR_GPU_IS_LOST: u32 = 15;

/// Directory holding the complete fake library (and a `libnvidia-ml.so` symlink).
pub fn library_dir() -> PathBuf {
    PathBuf::from(env!("FAKE_NVML_DIR"))
}

/// Directory holding the variant without `nvmlDeviceGetPowerUsage`.
pub fn partial_library_dir() -> PathBuf {
    PathBuf::from(env!("FAKE_NVML_PARTIAL_DIR"))
}

/// Which build of the fake library to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Variant {
    /// Every symbol the collector calls.
    #[default]
    Full,
    /// Lacks `nvmlDeviceGetPowerUsage`.
    NoPowerUsage,
    /// Lacks `nvmlShutdown` (so it is not a usable NVML).
    NoShutdown,
}

impl Variant {
    /// Directory of this variant's build output.
    pub fn dir(self) -> PathBuf {
        match self {
            Variant::Full => library_dir(),
            Variant::NoPowerUsage => partial_library_dir(),
            Variant::NoShutdown => PathBuf::from(env!("FAKE_NVML_NO_SHUTDOWN_DIR")),
        }
    }
}

/// Settings of one fake GPU; `None` keeps the library's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FakeGpu {
    /// Product name.
    pub name: Option<String>,
    /// UUID.
    pub uuid: Option<String>,
    /// Total memory, bytes.
    pub mem_total: Option<u64>,
    /// Used memory, bytes.
    pub mem_used: Option<u64>,
    /// GPU utilisation, percent.
    pub util_gpu: Option<u32>,
    /// Memory utilisation, percent.
    pub util_mem: Option<u32>,
    /// Temperature, °C.
    pub temp: Option<u32>,
    /// Power draw, mW.
    pub power: Option<u32>,
    /// Enforced power limit, mW.
    pub power_limit: Option<u32>,
    /// Current MIG mode (0 off, 1 on).
    pub mig: Option<u32>,
    /// PCIe link generation.
    pub pcie_gen: Option<u32>,
    /// PCIe link width.
    pub pcie_width: Option<u32>,
    /// Make `nvmlDeviceGetHandleByIndex_v2` fail for this GPU (with `GPU_IS_LOST`).
    pub fail_handle: bool,
    /// Queries to fail, with the NVML return code: query is one of `name`, `uuid`,
    /// `mem`, `util`, `temp`, `power`, `power_limit`, `mig`, `pcie_gen`, `pcie_width`.
    pub query_errors: Vec<(String, u32)>,
}

/// Settings of the whole fake library.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FakeNvmlConfig {
    /// Make `nvmlInit_v2` return this NVML code.
    pub init_error: Option<u32>,
    /// Make `nvmlDeviceGetCount_v2` return this NVML code.
    pub count_error: Option<u32>,
    /// Device count; defaults to `gpus.len()`.
    pub count: Option<u32>,
    /// Driver version string.
    pub driver_version: Option<String>,
    /// Per-GPU settings, index = position.
    pub gpus: Vec<FakeGpu>,
}

impl FakeNvmlConfig {
    /// The config file text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let count = self
            .count
            .unwrap_or_else(|| u32::try_from(self.gpus.len()).unwrap_or(u32::MAX));
        line(&mut out, "count", Some(count));
        line(&mut out, "init_error", self.init_error);
        line(&mut out, "count_error", self.count_error);
        line(&mut out, "driver_version", self.driver_version.as_deref());
        for (i, g) in self.gpus.iter().enumerate() {
            let k = |key: &str| format!("gpu{i}.{key}");
            line(&mut out, &k("name"), g.name.as_deref());
            line(&mut out, &k("uuid"), g.uuid.as_deref());
            line(&mut out, &k("mem_total"), g.mem_total);
            line(&mut out, &k("mem_used"), g.mem_used);
            line(&mut out, &k("util_gpu"), g.util_gpu);
            line(&mut out, &k("util_mem"), g.util_mem);
            line(&mut out, &k("temp"), g.temp);
            line(&mut out, &k("power"), g.power);
            line(&mut out, &k("power_limit"), g.power_limit);
            line(&mut out, &k("mig"), g.mig);
            line(&mut out, &k("pcie_gen"), g.pcie_gen);
            line(&mut out, &k("pcie_width"), g.pcie_width);
            line(&mut out, &k("fail_handle"), g.fail_handle.then_some(1));
            for (query, code) in &g.query_errors {
                line(&mut out, &k(&format!("{query}_error")), Some(code));
            }
        }
        out
    }
}

fn line(out: &mut String, key: &str, value: Option<impl std::fmt::Display>) {
    if let Some(value) = value {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{key}={value}");
    }
}

/// A private copy of the fake library with its config, in a temporary directory that
/// is removed on drop.
#[derive(Debug)]
pub struct FakeNvml {
    dir: TempDir,
}

impl FakeNvml {
    /// Copies the `variant` library into a fresh directory and writes `config` beside it.
    pub fn new(variant: Variant, config: &FakeNvmlConfig) -> io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("fake-nvml-").tempdir()?;
        fs::copy(
            variant.dir().join(LIBRARY_NAME),
            dir.path().join(LIBRARY_NAME),
        )?;
        fs::write(dir.path().join(CONFIG_NAME), config.render())?;
        Ok(FakeNvml { dir })
    }

    /// Directory holding the library and config (what `LD_LIBRARY_PATH` should name).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Full path of this copy of the library.
    pub fn library_path(&self) -> PathBuf {
        self.dir.path().join(LIBRARY_NAME)
    }

    /// Path of the config file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join(CONFIG_NAME)
    }

    /// Rewrites the config; takes effect at the library's next `nvmlInit_v2` while it is
    /// not initialised (i.e. for a new collector or after a re-init).
    pub fn rewrite(&self, config: &FakeNvmlConfig) -> io::Result<()> {
        fs::write(self.config_path(), config.render())
    }

    /// Environment for a child process that should find this fake via the loader.
    pub fn env(&self) -> Env {
        Env {
            library_dir: self.dir.path().to_path_buf(),
            config: self.config_path(),
        }
    }
}

/// Environment variables that make a child process load a fake NVML by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    /// Directory prepended to `LD_LIBRARY_PATH`.
    pub library_dir: PathBuf,
    /// Value of `FAKE_NVML_CONFIG`.
    pub config: PathBuf,
}

impl Env {
    /// The variables as (name, value) pairs; `LD_LIBRARY_PATH` keeps the inherited value
    /// after the fake's directory.
    pub fn vars(&self) -> Vec<(OsString, OsString)> {
        let mut ld = self.library_dir.clone().into_os_string();
        if let Some(old) = std::env::var_os("LD_LIBRARY_PATH").filter(|v| !v.is_empty()) {
            ld.push(":");
            ld.push(old);
        }
        vec![
            (OsString::from("LD_LIBRARY_PATH"), ld),
            (
                OsString::from(CONFIG_ENV),
                self.config.clone().into_os_string(),
            ),
        ]
    }

    /// Sets the variables on `cmd`.
    pub fn apply<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        cmd.envs(self.vars())
    }
}
