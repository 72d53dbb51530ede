//! System collector against this machine's real /proc and /sys.

use std::time::Duration;

use linkmeter_agent::collect::Collector;
use linkmeter_agent::collect::system::{SystemCollector, SystemConfig};

#[test]
fn real_host_has_cpus_memory_loopback_and_a_disk() {
    let mut collector = SystemCollector::new(SystemConfig {
        cpu_sample_interval: Duration::from_millis(200),
        ..SystemConfig::default()
    });
    let report = collector.collect();
    eprintln!("{report:#?}");

    let Some(summary) = &report.summary else {
        panic!("no summary from the real /proc: {:?}", report.errors)
    };
    assert!(report.condition.available, "{:?}", report.errors);
    assert!(summary.cpu_count >= 1);
    assert!(summary.memory_total_bytes > 0);
    assert!(summary.memory_used_bytes <= summary.memory_total_bytes);
    assert!(
        summary.cpu_utilization_permille.is_some_and(|p| p <= 1000),
        "{summary:?}"
    );
    assert!(summary.kernel_version.is_some(), "{:?}", report.errors);

    let lo = report.nics.iter().find(|n| n.name == "lo");
    let Some(lo) = lo else {
        panic!("no lo among {:?}", report.nics)
    };
    assert!(!lo.physical);
    // Loopback counts the same bytes both ways.
    assert_eq!(lo.rx_bytes, lo.tx_bytes);
    assert!(
        !linkmeter_agent::status::nics(&report)
            .iter()
            .any(|n| n.name == "lo"),
        "loopback must not be published"
    );

    assert!(
        report.disks.iter().any(|d| d.mount_point == "/"),
        "root filesystem missing: {:?} {:?}",
        report.disks,
        report.errors
    );
    for d in &report.disks {
        assert!(
            d.total_bytes > 0 && d.available_bytes <= d.total_bytes,
            "{d:?}"
        );
    }

    // A second collection measures since the first, within the same bounds.
    let again = collector.collect();
    assert!(
        again
            .summary
            .and_then(|s| s.cpu_utilization_permille)
            .is_some_and(|p| p <= 1000)
    );
}
