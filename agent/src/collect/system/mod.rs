//! System collector: CPU, memory, load, kernel, NICs and disks of the host.
//!
//! Reads /proc and /sys directly, node_exporter style, from configurable roots: in a pod
//! the host's trees are mounted elsewhere (`/host/proc`, `/host/sys`), and a library
//! such as sysinfo would read the container's own /proc instead. Parsing lives in
//! [`parse`] as pure functions; this module does the reading and assembles the report.
//!
//! Where the host's view differs from the process's:
//! - NIC counters come from `<proc>/1/net/dev` (init's network namespace, i.e. the host's)
//!   before `<proc>/net/dev` (the reader's own namespace); `<sys>/class/net` shows the
//!   namespace of whoever mounted that sysfs, which for a host bind mount is the host.
//! - Mounts come from `<proc>/1/mounts` (init's mount namespace) before `<proc>/mounts`.
//! - Disk sizes need the host's mounts visible under `root_fs`, which for a hostPath
//!   volume means `mountPropagation: HostToContainer`; mounts that are not visible are
//!   reported as errors rather than sized wrongly.

pub mod disk;
pub mod parse;

use std::fs::OpenOptions;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

pub use disk::DiskStats;

use crate::availability::Availability;

/// This host's name from the kernel (`/proc/sys/kernel/hostname`), when it is a usable
/// node or peer name (non-empty, at most 253 bytes).
pub fn host_name() -> Option<String> {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = raw.trim();
    (!name.is_empty() && name.len() <= 253).then(|| name.to_owned())
}
use parse::{CpuTimes, MAX_NICS, StatSnapshot};

use super::Collector;

/// Most bytes read from one /proc file; the files used here are a few KiB on real hosts,
/// and the cap keeps a hostile or broken mount (an endless FUSE file, say) from making
/// one collection unbounded.
pub const MAX_PROC_FILE_BYTES: u64 = 1 << 20;
/// Mounts files grow with pods (each has a few volume mounts), so they get more room.
const MAX_MOUNTS_FILE_BYTES: u64 = 4 << 20;
/// sysfs attributes are at most one page.
const MAX_SYSFS_FILE_BYTES: u64 = 4096;
/// Most entries kept in [`SystemReport::errors`]; one broken source should not produce a
/// report dominated by its error list.
pub const MAX_ERRORS: usize = 64;
/// Longest condition message; it is published in the NodeTopology status.
const MAX_CONDITION_MESSAGE: usize = 1024;
/// Shortest CPU sampling interval: with USER_HZ = 100, shorter windows hold too few
/// ticks per CPU to give a meaningful share.
pub const MIN_CPU_SAMPLE_INTERVAL: Duration = Duration::from_millis(200);

/// Where the system collector reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemConfig {
    /// Host procfs, `/proc` or e.g. `/host/proc` in a pod.
    pub proc_root: PathBuf,
    /// Host sysfs, `/sys` or e.g. `/host/sys` in a pod.
    pub sys_root: PathBuf,
    /// Host `/` as seen by this process (`/` or e.g. `/host/root`); mount points from
    /// the host's mount table are resolved under it for statvfs.
    pub root_fs: PathBuf,
    /// Gap between the two /proc/stat samples taken on the first collection; later
    /// collections measure since the previous one. Raised to
    /// [`MIN_CPU_SAMPLE_INTERVAL`] if smaller.
    pub cpu_sample_interval: Duration,
}

impl Default for SystemConfig {
    fn default() -> Self {
        SystemConfig {
            proc_root: PathBuf::from("/proc"),
            sys_root: PathBuf::from("/sys"),
            root_fs: PathBuf::from("/"),
            cpu_sample_interval: Duration::from_millis(250),
        }
    }
}

impl SystemConfig {
    /// Config for a host root mounted at `root`: `root/proc`, `root/sys` and `root`
    /// itself, the layout of a single `hostPath: /` volume.
    pub fn under(root: impl AsRef<Path>) -> Self {
        let root = root.as_ref();
        SystemConfig {
            proc_root: root.join("proc"),
            sys_root: root.join("sys"),
            root_fs: root.to_path_buf(),
            ..SystemConfig::default()
        }
    }
}

/// Counters and link facts of one network interface.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NicStats {
    /// Interface name, e.g. `eth0`.
    pub name: String,
    /// Negotiated link speed, Mbit/s; `None` when the driver does not say.
    pub speed_mbps: Option<u64>,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Transmit errors.
    pub tx_errors: u64,
    /// `operstate` is `up`. Loopback reports `unknown`, hence false for `lo`.
    pub oper_up: bool,
    /// Backed by a device (`/sys/class/net/NAME/device` exists), as opposed to virtual
    /// interfaces (bridges, veths, tunnels, loopback).
    pub physical: bool,
}

/// The host's size and load, in the units the status publishes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostSummary {
    /// Online CPUs.
    pub cpu_count: u32,
    /// CPU busy share since the previous collection, per mille; `None` on the first.
    pub cpu_utilization_permille: Option<u32>,
    /// `MemTotal`, bytes.
    pub memory_total_bytes: u64,
    /// `MemTotal - MemAvailable`, bytes.
    pub memory_used_bytes: u64,
    /// 1-minute load average × 1000.
    pub load1_milli: u64,
    /// 5-minute load average × 1000.
    pub load5_milli: u64,
    /// 15-minute load average × 1000.
    pub load15_milli: u64,
    /// Kernel release (`/proc/sys/kernel/osrelease`).
    pub kernel_version: Option<String>,
}

/// One collection of host facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemReport {
    /// The host's size and load; `None` when neither /proc/stat nor /proc/meminfo
    /// could be read. Figures whose source failed are zero/`None`, and named in
    /// `errors`.
    pub summary: Option<HostSummary>,
    /// Network interfaces, in `/proc/net/dev` order.
    pub nics: Vec<NicStats>,
    /// Real filesystems, one per device.
    pub disks: Vec<DiskStats>,
    /// Unavailable only when no core source (stat, meminfo) was readable.
    pub condition: Availability,
    /// What went wrong, one line each, at most [`MAX_ERRORS`].
    pub errors: Vec<String>,
}

impl SystemReport {
    /// The NICs to publish: physical ones, or, on hosts where none is (some VMs and
    /// containers), every interface except loopback.
    pub fn nics_to_publish(&self) -> Vec<&NicStats> {
        let physical: Vec<&NicStats> = self.nics.iter().filter(|n| n.physical).collect();
        if physical.is_empty() {
            self.nics.iter().filter(|n| n.name != "lo").collect()
        } else {
            physical
        }
    }
}

/// Collects [`SystemReport`]s. Keeps the previous /proc/stat sample so that CPU
/// utilisation after the first collection covers the whole time since the last one.
#[derive(Debug)]
pub struct SystemCollector {
    config: SystemConfig,
    previous_cpu: Option<(Instant, CpuTimes)>,
}

impl SystemCollector {
    /// A collector reading from `config`'s roots.
    pub fn new(mut config: SystemConfig) -> Self {
        config.cpu_sample_interval = config.cpu_sample_interval.max(MIN_CPU_SAMPLE_INTERVAL);
        SystemCollector {
            config,
            previous_cpu: None,
        }
    }

    /// The configuration in effect (interval already raised to the minimum).
    pub fn config(&self) -> &SystemConfig {
        &self.config
    }

    fn proc_path(&self, relative: &str) -> PathBuf {
        self.config.proc_root.join(relative)
    }

    fn read_stat(&self) -> Result<StatSnapshot, String> {
        let path = self.proc_path("stat");
        let text = read_capped(&path, MAX_PROC_FILE_BYTES).map_err(|e| e.to_string())?;
        parse::parse_proc_stat(&text.text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Reads /proc/stat and works out utilisation against the previous sample, taking a
    /// baseline and waiting one interval first when there is none.
    fn sample_cpu(&mut self, errors: &mut Errors) -> (Option<StatSnapshot>, Option<u32>) {
        let baseline = match self.previous_cpu.take() {
            Some(previous) => previous,
            None => match self.read_stat() {
                Ok(s) => (Instant::now(), s.total),
                Err(e) => {
                    errors.push(e);
                    return (None, None);
                }
            },
        };
        // Also when the caller collects again sooner than the interval: a window of a
        // few ticks would give a noisy figure.
        let due = baseline.0 + self.config.cpu_sample_interval;
        let now = Instant::now();
        if due > now {
            thread::sleep(due - now);
        }
        match self.read_stat() {
            Ok(s) => {
                self.previous_cpu = Some((Instant::now(), s.total));
                let utilization = parse::cpu_utilization_permille(&baseline.1, &s.total);
                (Some(s), utilization)
            }
            Err(e) => {
                errors.push(e);
                (None, None)
            }
        }
    }

    /// Online CPUs from sysfs, for when /proc/stat cannot say.
    fn cpu_count_from_sysfs(&self, errors: &mut Errors) -> Option<u32> {
        let path = self.config.sys_root.join("devices/system/cpu/online");
        let read = read_capped(&path, MAX_SYSFS_FILE_BYTES).map_err(|e| e.to_string());
        match read.and_then(|t| {
            parse::parse_cpu_list_count(&t.text).map_err(|e| format!("{}: {e}", path.display()))
        }) {
            Ok(n) => Some(n),
            Err(e) => {
                errors.push(e);
                None
            }
        }
    }

    fn read_parsed<T, E: std::fmt::Display>(
        &self,
        relative: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
        errors: &mut Errors,
    ) -> Option<T> {
        let path = self.proc_path(relative);
        let result = read_capped(&path, MAX_PROC_FILE_BYTES)
            .map_err(|e| e.to_string())
            .and_then(|t| parse(&t.text).map_err(|e| format!("{}: {e}", path.display())));
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                errors.push(e);
                None
            }
        }
    }

    fn collect_nics(&self, errors: &mut Errors) -> Vec<NicStats> {
        let Some(text) = self.read_first_of(&["1/net/dev", "net/dev"], MAX_PROC_FILE_BYTES, errors)
        else {
            return Vec::new();
        };
        let (counters, more) = match parse::parse_net_dev(&text) {
            Ok(parsed) => parsed,
            Err(e) => {
                errors.push(format!("net/dev: {e}"));
                return Vec::new();
            }
        };
        if more {
            errors.push(format!(
                "more than {MAX_NICS} interfaces; the rest are left out"
            ));
        }
        counters
            .into_iter()
            .map(|c| {
                // The name passed `is_valid_ifname` in the parser, so joining it cannot
                // leave <sys>/class/net.
                let dir = self.config.sys_root.join("class/net").join(&c.name);
                NicStats {
                    speed_mbps: read_speed(&dir.join("speed"), errors),
                    oper_up: read_capped(&dir.join("operstate"), MAX_SYSFS_FILE_BYTES)
                        .is_ok_and(|t| t.text.trim() == "up"),
                    // symlink_metadata: on a real sysfs `device` is a symlink, and whether
                    // its target resolves from inside a container does not matter.
                    physical: std::fs::symlink_metadata(dir.join("device")).is_ok(),
                    name: c.name,
                    rx_bytes: c.rx_bytes,
                    tx_bytes: c.tx_bytes,
                    rx_packets: c.rx_packets,
                    tx_packets: c.tx_packets,
                    rx_errors: c.rx_errors,
                    tx_errors: c.tx_errors,
                }
            })
            .collect()
    }

    fn collect_disks(&self, errors: &mut Errors) -> Vec<DiskStats> {
        let Some(text) = self.read_first_of(&["1/mounts", "mounts"], MAX_MOUNTS_FILE_BYTES, errors)
        else {
            return Vec::new();
        };
        let (mounts, skipped) = parse::parse_mounts(&text);
        if skipped > 0 {
            errors.push(format!("mounts: {skipped} malformed lines skipped"));
        }
        let mut disk_errors = Vec::new();
        let disks = disk::collect_disks(&self.config.root_fs, &mounts, &mut disk_errors);
        for e in disk_errors {
            errors.push(e);
        }
        disks
    }

    /// Text of the first readable of `candidates` (relative to the proc root). Only when
    /// all fail is the last error recorded: `<proc>/1/...` being unreadable (no
    /// permission to look at init) is normal outside a privileged pod.
    fn read_first_of(&self, candidates: &[&str], cap: u64, errors: &mut Errors) -> Option<String> {
        let mut last_error = None;
        for relative in candidates {
            match read_capped(&self.proc_path(relative), cap) {
                Ok(t) => {
                    if t.truncated {
                        errors.push(format!(
                            "{}: larger than {cap} bytes, read only the start",
                            self.proc_path(relative).display()
                        ));
                    }
                    return Some(t.text);
                }
                Err(e) => last_error = Some(e),
            }
        }
        if let Some(e) = last_error {
            errors.push(e.to_string());
        }
        None
    }
}

impl Collector for SystemCollector {
    type Report = SystemReport;

    fn name(&self) -> &'static str {
        "system"
    }

    fn collect(&mut self) -> SystemReport {
        let mut errors = Errors::default();
        let (stat, cpu_utilization_permille) = self.sample_cpu(&mut errors);
        let meminfo = self.read_parsed("meminfo", parse::parse_meminfo, &mut errors);
        let load = self.read_parsed("loadavg", parse::parse_loadavg, &mut errors);
        let kernel_version =
            self.read_parsed("sys/kernel/osrelease", parse::parse_osrelease, &mut errors);

        let core_readable = stat.is_some() || meminfo.is_some();
        let summary = core_readable.then(|| {
            let cpu_count = match stat {
                Some(s) if s.cpu_count > 0 => Some(s.cpu_count),
                _ => self.cpu_count_from_sysfs(&mut errors),
            };
            let load = load.unwrap_or_default();
            HostSummary {
                cpu_count: cpu_count.unwrap_or(0),
                cpu_utilization_permille,
                memory_total_bytes: meminfo.map_or(0, |m| m.total_bytes),
                memory_used_bytes: meminfo.map_or(0, |m| m.used_bytes()),
                load1_milli: load.load1_milli,
                load5_milli: load.load5_milli,
                load15_milli: load.load15_milli,
                kernel_version,
            }
        });

        let nics = self.collect_nics(&mut errors);
        let disks = self.collect_disks(&mut errors);

        let errors = errors.into_vec();
        let message = parse::join_bounded(&errors, MAX_CONDITION_MESSAGE);
        let condition = if !core_readable {
            Availability::down("ProcUnreadable", message)
        } else if errors.is_empty() {
            Availability::up("Collected", "")
        } else {
            Availability::up("Partial", message)
        };

        SystemReport {
            summary,
            nics,
            disks,
            condition,
            errors,
        }
    }
}

/// Error lines with a cap: past [`MAX_ERRORS`] only a count is kept.
#[derive(Debug, Default)]
struct Errors {
    lines: Vec<String>,
    dropped: usize,
}

impl Errors {
    fn push(&mut self, line: String) {
        if self.lines.len() < MAX_ERRORS {
            self.lines.push(line);
        } else {
            self.dropped += 1;
        }
    }

    fn into_vec(mut self) -> Vec<String> {
        if self.dropped > 0 {
            self.lines
                .push(format!("{} more errors left out", self.dropped));
        }
        self.lines
    }
}

/// Text read from a file, at most a cap's worth.
struct Capped {
    text: String,
    /// The file was longer than the cap; `text` ends at the last complete line.
    truncated: bool,
}

/// Reads at most `cap` bytes of `path`. Invalid UTF-8 is replaced rather than refused
/// (the parsers reject what they cannot use); when the cap cuts the file, the partial
/// last line is dropped so that parsers never see a half line as if it were whole.
fn read_capped(path: &Path, cap: u64) -> io::Result<Capped> {
    let with_path = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    // O_NONBLOCK changes nothing for regular, proc and sysfs files, but keeps a FIFO
    // planted in a bogus host tree from blocking the open forever.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(with_path)?;
    let mut bytes = Vec::new();
    // One byte past the cap tells "exactly cap bytes" from "more than cap".
    file.take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(with_path)?;
    let truncated = u64::try_from(bytes.len()).map_or(true, |n| n > cap);
    if truncated {
        let keep = bytes
            .iter()
            .take(usize::try_from(cap).unwrap_or(usize::MAX))
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        bytes.truncate(keep);
    }
    Ok(Capped {
        text: String::from_utf8_lossy(&bytes).into_owned(),
        truncated,
    })
}

/// Link speed from a sysfs `speed` attribute. Virtual devices fail the read with EINVAL
/// and some drivers omit the file: both mean "unknown", not an error.
fn read_speed(path: &Path, errors: &mut Errors) -> Option<u64> {
    match read_capped(path, MAX_SYSFS_FILE_BYTES) {
        Ok(t) => match parse::parse_sysfs_speed(&t.text) {
            Ok(speed) => speed,
            Err(e) => {
                errors.push(format!("{}: {e}", path.display()));
                None
            }
        },
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_capped_drops_partial_last_line() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("f");
        std::fs::write(&path, "aaaa\nbbbb\ncccc\n")?;
        let t = read_capped(&path, 12)?;
        assert!(t.truncated);
        assert_eq!(t.text, "aaaa\nbbbb\n");
        let t = read_capped(&path, 15)?;
        assert!(!t.truncated);
        assert_eq!(t.text, "aaaa\nbbbb\ncccc\n");
        Ok(())
    }

    #[test]
    fn read_capped_does_not_block_on_a_fifo() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("meminfo");
        let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())?;
        // SAFETY: `c_path` is a valid NUL-terminated path for the duration of the call.
        let rc = unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) };
        assert_eq!(rc, 0, "mkfifo: {}", io::Error::last_os_error());
        let t = read_capped(&path, MAX_PROC_FILE_BYTES)?;
        assert_eq!(t.text, "");
        Ok(())
    }

    #[test]
    fn errors_are_capped() {
        let mut errors = Errors::default();
        for i in 0..MAX_ERRORS + 10 {
            errors.push(format!("e{i}"));
        }
        let v = errors.into_vec();
        assert_eq!(v.len(), MAX_ERRORS + 1);
        assert_eq!(v[MAX_ERRORS], "10 more errors left out");
    }

    #[test]
    fn interval_is_raised_to_minimum() {
        let c = SystemCollector::new(SystemConfig {
            cpu_sample_interval: Duration::from_millis(1),
            ..SystemConfig::default()
        });
        assert_eq!(c.config().cpu_sample_interval, MIN_CPU_SAMPLE_INTERVAL);
        assert_eq!(c.name(), "system");
    }

    #[test]
    fn nics_for_status_prefers_physical() {
        let nic = |name: &str, physical: bool, speed: Option<u64>| NicStats {
            name: name.into(),
            physical,
            speed_mbps: speed,
            ..NicStats::default()
        };
        let mut report = SystemReport {
            summary: None,
            nics: vec![
                nic("lo", false, None),
                nic("eth0", true, Some(25_000)),
                nic("veth1", false, Some(10_000)),
            ],
            disks: Vec::new(),
            condition: Availability::up("Collected", ""),
            errors: Vec::new(),
        };
        let names = |r: &SystemReport| -> Vec<String> {
            r.nics_to_publish().iter().map(|n| n.name.clone()).collect()
        };
        assert_eq!(names(&report), vec!["eth0".to_owned()]);
        report.nics.remove(1);
        assert_eq!(names(&report), vec!["veth1".to_owned()]);
    }
}
