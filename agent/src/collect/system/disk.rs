//! Which mounts count as disks, and their sizes via statvfs.

use std::collections::HashSet;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use super::parse::MountEntry;

/// Most disks reported; one per distinct device, so a real node never comes close.
pub const MAX_DISKS: usize = 1024;

/// Filesystem types that hold no disk space of their own: kernel pseudo filesystems,
/// memory-backed ones, and read-only images (snap squashfs, erofs) that are always 100 %
/// full and so say nothing useful.
const PSEUDO_FS: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "erofs",
    "fusectl",
    "hugetlbfs",
    "iso9660",
    "mqueue",
    "nsfs",
    "proc",
    "procfs",
    "pstore",
    "ramfs",
    "rootfs",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tmpfs",
    "tracefs",
];

/// Network and FUSE filesystems. statvfs on a hung NFS server or a dead FUSE daemon
/// blocks in the kernel with no way to time it out from this thread, and a stuck
/// collector would stop the whole system report, so these are left out.
const NETWORK_FS: &[&str] = &[
    "9p",
    "afs",
    "ceph",
    "cifs",
    "glusterfs",
    "lustre",
    "ncpfs",
    "nfs",
    "nfs4",
    "smb3",
    "smbfs",
    "sshfs",
];

/// Mount points below which only runtime plumbing lives (bind mounts of the same disks,
/// container layers, pod volumes); the devices behind them are found at their real mount.
const SKIP_PREFIXES: &[&str] = &[
    "/proc",
    "/sys",
    "/dev",
    "/run",
    "/var/lib/docker",
    "/var/lib/containerd",
    "/var/lib/containers",
    "/var/lib/kubelet/pods",
    "/var/lib/kubelet/plugins",
    "/snap",
];

/// Size of one mounted filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskStats {
    /// Mount point on the host, e.g. `/` or `/var/lib/data`.
    pub mount_point: String,
    /// Source device, e.g. `/dev/vda1`.
    pub device: String,
    /// Filesystem type, e.g. `ext4`.
    pub fs_type: String,
    /// Size, bytes.
    pub total_bytes: u64,
    /// Space an unprivileged user can still use, bytes (what `df` shows as available).
    pub available_bytes: u64,
}

/// Whether a mount entry can be a disk worth reporting.
pub fn is_real_filesystem(entry: &MountEntry) -> bool {
    let fs = entry.fs_type.as_str();
    // The overlay a container runs on is its root disk; anywhere else an overlay is a
    // container's layer stack on top of a disk reported in its own right.
    if fs == "overlay" {
        return entry.mount_point == "/";
    }
    if PSEUDO_FS.contains(&fs)
        || NETWORK_FS.contains(&fs)
        || fs.starts_with("nfs")
        || fs.starts_with("fuse")
    {
        return false;
    }
    !SKIP_PREFIXES.iter().any(|p| {
        entry
            .mount_point
            .strip_prefix(p)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// Where a host mount point is, seen from this process: `root_fs` joined with it.
///
/// `Path::join` with an absolute path would discard `root_fs`, so the leading `/` is
/// removed first; `..` components are refused so that a hostile mounts file cannot
/// point statvfs outside `root_fs`.
pub fn host_path(root_fs: &Path, mount_point: &str) -> Option<PathBuf> {
    let relative = Path::new(mount_point.trim_start_matches('/'));
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return None;
    }
    Some(root_fs.join(relative))
}

/// Sizes from statvfs(3).
fn statvfs(path: &Path) -> Result<(u64, u64), String> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| format!("statvfs {}: path contains NUL", path.display()))?;
    // SAFETY: an all-zero `statvfs` is a valid value of a plain C struct of integers.
    let mut buf: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is a valid NUL-terminated string and `buf` a valid, writable
    // `statvfs` that outlives the call; statvfs writes only into it.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut buf) };
    if rc != 0 {
        return Err(format!(
            "statvfs {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    // The field types vary by target (u32 on some 32-bit ABIs), hence the conversions.
    #[allow(clippy::useless_conversion)]
    let frsize = u64::from(buf.f_frsize);
    #[allow(clippy::useless_conversion)]
    let (blocks, bavail) = (u64::from(buf.f_blocks), u64::from(buf.f_bavail));
    Ok((blocks.saturating_mul(frsize), bavail.saturating_mul(frsize)))
}

/// Whether `path` is a mount point in this process's view: its device differs from its
/// parent's. When the host root is bind-mounted without mount propagation, the host's
/// other mounts are not visible under it and statvfs would silently report the root
/// filesystem's figures for each of them; this catches that.
fn is_mount_point(path: &Path) -> Result<bool, String> {
    let Some(parent) = path.parent() else {
        return Ok(true);
    };
    let dev = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.dev())
            .map_err(|e| format!("stat {}: {e}", p.display()))
    };
    Ok(dev(path)? != dev(parent)?)
}

/// Disks among `mounts`: real filesystems, one per device (the first mount of each wins,
/// which in mount order is the original rather than a later bind mount), sized by
/// statvfs under `root_fs`. Problems with single mounts go to `errors` and skip only
/// that mount.
pub fn collect_disks(
    root_fs: &Path,
    mounts: &[MountEntry],
    errors: &mut Vec<String>,
) -> Vec<DiskStats> {
    let mut seen = HashSet::new();
    let mut disks = Vec::new();
    for entry in mounts.iter().filter(|e| is_real_filesystem(e)) {
        if disks.len() >= MAX_DISKS {
            errors.push(format!(
                "more than {MAX_DISKS} disks; the rest are left out"
            ));
            break;
        }
        if seen.contains(entry.device.as_str()) {
            continue;
        }
        let Some(path) = host_path(root_fs, &entry.mount_point) else {
            errors.push(format!("mount point {:?} refused", entry.mount_point));
            continue;
        };
        if entry.mount_point != "/" {
            match is_mount_point(&path) {
                Ok(true) => {}
                Ok(false) => {
                    errors.push(format!(
                        "{} is not mounted under {} (mount propagation?)",
                        entry.mount_point,
                        root_fs.display()
                    ));
                    continue;
                }
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            }
        }
        match statvfs(&path) {
            Ok((total_bytes, available_bytes)) => {
                seen.insert(entry.device.as_str());
                disks.push(DiskStats {
                    mount_point: entry.mount_point.clone(),
                    device: entry.device.clone(),
                    fs_type: entry.fs_type.clone(),
                    total_bytes,
                    available_bytes,
                });
            }
            Err(e) => errors.push(e),
        }
    }
    disks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(device: &str, mount_point: &str, fs_type: &str) -> MountEntry {
        MountEntry {
            device: device.into(),
            mount_point: mount_point.into(),
            fs_type: fs_type.into(),
        }
    }

    #[test]
    fn filters_pseudo_and_runtime_mounts() {
        assert!(is_real_filesystem(&entry("/dev/vda", "/", "ext4")));
        assert!(is_real_filesystem(&entry("/dev/vdb", "/data", "xfs")));
        assert!(is_real_filesystem(&entry("overlay", "/", "overlay")));
        assert!(is_real_filesystem(&entry("/dev/vdc", "/devices", "ext4")));
        assert!(!is_real_filesystem(&entry("overlay", "/var/x", "overlay")));
        assert!(!is_real_filesystem(&entry("proc", "/proc", "proc")));
        assert!(!is_real_filesystem(&entry("tmpfs", "/dev/shm", "tmpfs")));
        assert!(!is_real_filesystem(&entry(
            "cgroup",
            "/sys/fs/cgroup/cpu",
            "cgroup"
        )));
        assert!(!is_real_filesystem(&entry("srv:/x", "/mnt/nfs", "nfs4")));
        assert!(!is_real_filesystem(&entry("sshfs", "/mnt/s", "fuse.sshfs")));
        assert!(!is_real_filesystem(&entry(
            "/dev/vda",
            "/var/lib/kubelet/pods/abc/volumes/x",
            "ext4"
        )));
        assert!(!is_real_filesystem(&entry("/dev/vda", "/run/foo", "ext4")));
    }

    #[test]
    fn host_path_keeps_root_and_refuses_dotdot() {
        let root = Path::new("/host/root");
        assert_eq!(host_path(root, "/"), Some(PathBuf::from("/host/root")));
        assert_eq!(
            host_path(root, "/var/data"),
            Some(PathBuf::from("/host/root/var/data"))
        );
        assert_eq!(host_path(root, "/a/../../etc"), None);
        assert_eq!(
            host_path(Path::new("/"), "/data"),
            Some(PathBuf::from("/data"))
        );
    }

    #[test]
    fn dedupes_by_device_and_reports_unmounted() -> Result<(), std::io::Error> {
        let root = tempfile::tempdir()?;
        std::fs::create_dir(root.path().join("plain"))?;
        let mounts = [
            entry("/dev/fake", "/", "ext4"),
            entry("/dev/fake", "/again", "ext4"),
            entry("/dev/other", "/plain", "ext4"),
            entry("/dev/gone", "/missing", "ext4"),
        ];
        let mut errors = Vec::new();
        let disks = collect_disks(root.path(), &mounts, &mut errors);
        assert_eq!(disks.len(), 1, "{disks:?}");
        assert_eq!(disks[0].mount_point, "/");
        assert!(disks[0].total_bytes > 0);
        assert!(disks[0].available_bytes <= disks[0].total_bytes);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("not mounted"), "{errors:?}");
        Ok(())
    }
}
