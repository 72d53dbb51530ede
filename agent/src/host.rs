//! Where the host's /proc, /sys and root filesystem are: one type that the CLI, the
//! daemon's configuration and the collectors share, so none of them imports another
//! for it.

use std::path::PathBuf;

use clap::Args;

/// Where the host's /proc, /sys and root filesystem are (mounted into the container).
#[derive(Debug, Args, Clone)]
pub struct HostPaths {
    /// The host's /proc (e.g. `/host/proc` in a container).
    #[arg(
        long,
        env = "LINKMETER_HOST_PROC",
        default_value = "/proc",
        value_name = "DIR"
    )]
    pub host_proc: PathBuf,
    /// The host's /sys.
    #[arg(
        long,
        env = "LINKMETER_HOST_SYS",
        default_value = "/sys",
        value_name = "DIR"
    )]
    pub host_sys: PathBuf,
    /// The host's root filesystem, for disk usage of its mount points.
    #[arg(
        long,
        env = "LINKMETER_HOST_ROOT",
        default_value = "/",
        value_name = "DIR"
    )]
    pub host_root: PathBuf,
}

impl Default for HostPaths {
    fn default() -> Self {
        HostPaths {
            host_proc: "/proc".into(),
            host_sys: "/sys".into(),
            host_root: "/".into(),
        }
    }
}
