//! System collector against committed fake /proc and /sys trees (copied from a real
//! host, plus one made-up 25 Gbit/s NIC), and against trees with parts missing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use linkmeter_agent::collect::Collector;
use linkmeter_agent::collect::system::parse::{cpu_utilization_permille, parse_proc_stat};
use linkmeter_agent::collect::system::{NicStats, SystemCollector, SystemConfig};
use linkmeter_aggregator::api::{CONDITION_SYSTEM_AVAILABLE, Nic, NodeTopologyStatus};

fn fixture_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/system")
}

fn collector_under(root: &Path) -> SystemCollector {
    SystemCollector::new(SystemConfig {
        cpu_sample_interval: Duration::from_millis(200),
        ..SystemConfig::under(root)
    })
}

#[test]
fn fixture_tree_gives_exact_figures() {
    let root = fixture_root();
    let report = collector_under(&root).collect();

    assert_eq!(report.errors, Vec::<String>::new());
    let mut published = NodeTopologyStatus::default();
    linkmeter_agent::status::apply_system(&mut published, &report);
    assert_eq!(published.conditions[0].type_, CONDITION_SYSTEM_AVAILABLE);
    assert!(report.condition.available);
    assert_eq!(report.condition.reason, "Collected");

    let Some(summary) = &report.summary else {
        panic!("summary missing: {:?}", report.errors)
    };
    assert_eq!(summary.cpu_count, 2);
    // The same file read twice shows no progress, which is "unknown", not "idle".
    assert_eq!(summary.cpu_utilization_permille, None);
    assert_eq!(summary.memory_total_bytes, 24_683_656 * 1024);
    assert_eq!(summary.memory_used_bytes, (24_683_656 - 24_130_404) * 1024);
    assert_eq!(
        (
            summary.load1_milli,
            summary.load5_milli,
            summary.load15_milli
        ),
        (290, 350, 210)
    );
    assert_eq!(summary.kernel_version.as_deref(), Some("6.18.44-fc-v769"));

    let names: Vec<&str> = report.nics.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["lo", "ifb0", "ifb1", "eth0", "ens5"]);
    assert_eq!(
        report.nics[0],
        NicStats {
            name: "lo".into(),
            speed_mbps: None,
            rx_bytes: 3697,
            tx_bytes: 3697,
            rx_packets: 35,
            tx_packets: 35,
            rx_errors: 0,
            tx_errors: 0,
            oper_up: false,
            physical: false,
        }
    );
    // eth0 is a virtio NIC: physical, but its driver reports speed -1.
    assert_eq!(
        report.nics[3],
        NicStats {
            name: "eth0".into(),
            speed_mbps: None,
            rx_bytes: 95_725_529,
            tx_bytes: 339_244,
            rx_packets: 4780,
            tx_packets: 3351,
            rx_errors: 0,
            tx_errors: 0,
            oper_up: true,
            physical: true,
        }
    );
    assert_eq!(
        report.nics[4],
        NicStats {
            name: "ens5".into(),
            speed_mbps: Some(25_000),
            rx_bytes: 1_234_567_890_123,
            tx_bytes: 98_765_432_101,
            rx_packets: 987_654,
            tx_packets: 876_543,
            rx_errors: 3,
            tx_errors: 7,
            oper_up: true,
            physical: true,
        }
    );
    // ifb1 has no sysfs directory at all: still listed, with nothing known about it.
    assert!(!report.nics[2].physical && !report.nics[2].oper_up);
    assert_eq!(report.nics[2].speed_mbps, None);

    let report_nics = linkmeter_agent::status::nics(&report);
    assert_eq!(
        report_nics,
        [
            Nic {
                name: "eth0".into(),
                speed_mbps: None
            },
            Nic {
                name: "ens5".into(),
                speed_mbps: Some(25_000)
            },
        ]
    );

    // Mounts come from proc/1/mounts (not the decoy proc/mounts): only /dev/vda at /
    // is a real disk; its bind mount under kubelet and the pseudo filesystems are not.
    assert_eq!(report.disks.len(), 1, "{:?}", report.disks);
    let disk = &report.disks[0];
    assert_eq!(
        (
            disk.mount_point.as_str(),
            disk.device.as_str(),
            disk.fs_type.as_str()
        ),
        ("/", "/dev/vda", "ext4")
    );
    // "/" resolves to the fixture directory, so the sizes are those of whatever disk
    // holds the checkout: only their consistency can be checked.
    assert!(disk.total_bytes > 0);
    assert!(disk.available_bytes <= disk.total_bytes);
}

#[test]
fn cpu_utilization_from_two_fixture_snapshots() -> Result<(), Box<dyn std::error::Error>> {
    let root = fixture_root();
    let earlier = parse_proc_stat(&std::fs::read_to_string(root.join("proc/stat"))?)?;
    let later = parse_proc_stat(&std::fs::read_to_string(root.join("stat-later"))?)?;
    // user +100, system +50 busy; idle +350, iowait +50 idle: 150 / 550.
    assert_eq!(
        cpu_utilization_permille(&earlier.total, &later.total),
        Some(272)
    );
    // Backwards in time is not negative utilisation.
    assert_eq!(cpu_utilization_permille(&later.total, &earlier.total), None);
    Ok(())
}

#[test]
fn only_meminfo_gives_partial_report() -> std::io::Result<()> {
    let dir = tempfile::tempdir()?;
    let proc_dir = dir.path().join("proc");
    std::fs::create_dir(&proc_dir)?;
    std::fs::copy(
        fixture_root().join("proc/meminfo"),
        proc_dir.join("meminfo"),
    )?;

    let report = collector_under(dir.path()).collect();

    let Some(summary) = &report.summary else {
        panic!("meminfo alone must give a summary: {:?}", report.errors)
    };
    assert_eq!(summary.memory_total_bytes, 24_683_656 * 1024);
    assert_eq!(summary.cpu_count, 0);
    assert_eq!(summary.cpu_utilization_permille, None);
    assert_eq!(summary.load1_milli, 0);
    assert_eq!(summary.kernel_version, None);
    assert!(report.nics.is_empty());
    assert!(report.disks.is_empty());

    assert!(report.condition.available);
    assert_eq!(report.condition.reason, "Partial");
    let all = report.errors.join("\n");
    for missing in [
        "stat",
        "loadavg",
        "osrelease",
        "online",
        "net/dev",
        "mounts",
    ] {
        assert!(all.contains(missing), "no error about {missing}: {all}");
    }
    assert!(report.condition.message.contains("stat"));
    Ok(())
}

#[test]
fn stat_without_cpu_lines_falls_back_to_sysfs_count() -> std::io::Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("proc"))?;
    std::fs::create_dir_all(dir.path().join("sys/devices/system/cpu"))?;
    std::fs::write(dir.path().join("proc/stat"), "cpu 1 2 3 4 5 6 7 8 0 0\n")?;
    std::fs::write(dir.path().join("sys/devices/system/cpu/online"), "0-3,6\n")?;
    let report = collector_under(dir.path()).collect();
    assert_eq!(report.summary.map(|s| s.cpu_count), Some(5));
    Ok(())
}

#[test]
fn empty_root_reports_unavailable_without_panicking() -> std::io::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut collector = collector_under(&dir.path().join("nothing-here"));
    for _ in 0..2 {
        let report = collector.collect();
        assert_eq!(report.summary, None);
        assert!(!report.condition.available);
        assert_eq!(report.condition.reason, "ProcUnreadable");
        assert!(!report.errors.is_empty());
    }
    Ok(())
}

#[test]
fn garbage_files_become_errors() -> std::io::Result<()> {
    let dir = tempfile::tempdir()?;
    let proc_dir = dir.path().join("proc");
    std::fs::create_dir_all(proc_dir.join("sys/kernel"))?;
    std::fs::create_dir_all(proc_dir.join("net"))?;
    std::fs::write(proc_dir.join("stat"), "cpu x y z\n")?;
    std::fs::write(
        proc_dir.join("meminfo"),
        "MemTotal: 99999999999999999999 kB\n",
    )?;
    std::fs::write(proc_dir.join("loadavg"), "NaN NaN NaN\n")?;
    std::fs::write(proc_dir.join("sys/kernel/osrelease"), b"\xff\xfe\x00\n")?;
    std::fs::write(proc_dir.join("net/dev"), "\0\0\0")?;
    std::fs::write(proc_dir.join("mounts"), "\u{1}\u{2}\n/dev/x\n")?;
    // A 3 MiB file: only the first MiB is read.
    let big = "MemTotal: 1 kB\n".repeat(200_000);
    std::fs::create_dir_all(dir.path().join("big/proc"))?;
    std::fs::write(dir.path().join("big/proc/meminfo"), big)?;

    let report = collector_under(dir.path()).collect();
    assert_eq!(report.summary, None);
    assert!(!report.condition.available);
    assert!(report.errors.len() >= 6, "{:?}", report.errors);

    let report = collector_under(&dir.path().join("big")).collect();
    // MemTotal parses; MemAvailable/MemFree never appear.
    assert_eq!(report.summary, None, "{:?}", report.errors);
    Ok(())
}
