//! `snapshot`: measure once, report once.
//!
//! The system and GPU collectors run on blocking threads while the ICMP round runs, so
//! the wall time is that of the longest part (the probe round), not their sum.

pub mod render;

use std::path::PathBuf;
use std::time::Duration;

use linkmeter_aggregator::api::NodeTopologyStatus;

use crate::collect::Collector;
use crate::collect::gpu::{GpuCollector, GpuConfig, GpuReport};
use crate::collect::system::{SystemCollector, SystemConfig, SystemReport};
use crate::probe::{IcmpConfig, IcmpProber, PeerTarget, resolve_peers};
use crate::state::AgentState;

/// What `snapshot` measures and how.
#[derive(Clone, Debug)]
pub struct SnapshotOptions {
    /// Peers to probe.
    pub peers: Vec<PeerTarget>,
    /// ICMP round settings.
    pub icmp: IcmpConfig,
    /// Run the GPU collector.
    pub gpu: bool,
    /// NVML library to load, when not the default.
    pub nvml_library: Option<PathBuf>,
    /// Run the system collector.
    pub system: bool,
    /// Host paths for the system collector.
    pub system_config: SystemConfig,
    /// Print JSON instead of text.
    pub json: bool,
}

/// Everything one snapshot found: the status as it would be published, plus the
/// collectors' full reports for the human-readable view.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// The report in the NodeTopology status shape.
    pub status: NodeTopologyStatus,
    /// Full system report (disks, NIC counters), when collected.
    pub system: Option<SystemReport>,
    /// Full GPU report, when collected.
    pub gpu: Option<GpuReport>,
}

/// Runs every enabled collector and one ICMP round to every peer, concurrently.
pub async fn take(opts: &SnapshotOptions) -> Snapshot {
    let system = opts.system.then(|| {
        let mut c = SystemCollector::new(opts.system_config.clone());
        tokio::task::spawn_blocking(move || c.collect())
    });
    let gpu = opts.gpu.then(|| {
        let mut c = GpuCollector::new(GpuConfig {
            library_path: opts.nvml_library.clone(),
        });
        tokio::task::spawn_blocking(move || c.collect())
    });

    // The report is built as the daemon builds it: one AgentState, one window per
    // peer holding exactly this round, and its status().
    let host = crate::collect::system::host_name().unwrap_or_default();
    let mut state = AgentState::new(&host, opts.icmp.count as usize, window_seconds(&opts.icmp));
    state.set_peers(&opts.peers);
    let prober = IcmpProber::new();
    let mut to_probe = Vec::new();
    for r in resolve_peers(&opts.peers).await {
        match r.addr {
            Ok(addr) => to_probe.push((r.target.name, addr)),
            Err(e) => state.record_unresolved(&r.target.name, e),
        }
    }
    let rounds = if to_probe.is_empty() {
        Vec::new()
    } else {
        prober.probe(&to_probe, &opts.icmp).await
    };
    state.record_round(&rounds, jiff::Timestamp::now());
    if !opts.peers.is_empty() {
        state.icmp_condition = Some(prober.condition());
    }
    state.system = match system {
        Some(task) => task.await.ok(),
        None => None,
    };
    state.gpu = match gpu {
        Some(task) => task.await.ok(),
        None => None,
    };
    Snapshot {
        status: state.status(),
        system: state.system.take(),
        gpu: state.gpu.take(),
    }
}

/// The round's length in whole seconds, at least 1.
fn window_seconds(c: &IcmpConfig) -> u64 {
    let d = c.interval.saturating_mul(c.count.saturating_sub(1))
        + c.timeout.min(Duration::from_secs(1));
    d.as_secs().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::PeerSamples;

    #[test]
    fn a_round_becomes_a_quantized_link() {
        let r = PeerSamples {
            peer: "n1".into(),
            addr: "192.0.2.7".parse().expect("literal"),
            samples: vec![
                Some(Duration::from_micros(14_123)),
                None,
                Some(Duration::from_micros(14_160)),
                Some(Duration::from_micros(14_170)),
            ],
            error: None,
        };
        let mut state = AgentState::new("me", 4, 1);
        state.set_peers(&[PeerTarget::from_host("n1")]);
        state.record_round(&[r], jiff::Timestamp::now());
        let status = state.status();
        let l = &status.links[0];
        assert_eq!(l.rtt_p50_us, Some(14_200));
        assert_eq!(l.loss_ppm, 250_000);
        assert_eq!(l.samples, 4);
        assert_eq!(l.address.as_deref(), Some("192.0.2.7"));
    }

    #[test]
    fn window_is_the_round_length() {
        let c = IcmpConfig {
            count: 20,
            interval: Duration::from_millis(100),
            ..Default::default()
        };
        assert_eq!(window_seconds(&c), 2);
    }
}
