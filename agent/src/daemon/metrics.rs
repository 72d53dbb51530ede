//! Prometheus metrics of the daemon.
//!
//! Conventions: base units (seconds, bytes, bits per second, ratios 0–1) in the name,
//! `_total` only on counters, one RTT histogram per peer with buckets from 25 µs (a
//! LAN round trip is tens of µs; goldpinger's 5 ms smallest bucket hides all of that).
//! Series grow with the peers this node probes, never with the cluster, and
//! `--max-peer-series` caps them: peers beyond the cap are folded into `peer="_other"`.
//! Host figures node_exporter already exports (memory, load, NIC counters, disks) are
//! not repeated here.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::collect::gpu::GpuReport;
use crate::collect::system::SystemReport;
use crate::probe::PeerSamples;

use super::outcome::Outcome;

/// RTT histogram bucket upper bounds, seconds: 25 µs to 2.5 s.
pub const RTT_BUCKETS: [f64; 15] = [
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 2.5,
];

/// Label of the series that sums up peers beyond `--max-peer-series`.
pub const OTHER_PEERS: &str = "_other";

type FloatGauge = Gauge<f64, AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabels {
    peer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerDirectionLabels {
    peer: String,
    direction: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CollectorLabels {
    collector: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    collector: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoleLabels {
    role: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TestLabels {
    role: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GpuLabels {
    gpu: String,
    uuid: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GpuInfoLabels {
    gpu: String,
    uuid: String,
    name: String,
    mig_mode: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

fn rtt_histogram() -> Histogram {
    Histogram::new(RTT_BUCKETS)
}

/// Every metric family, registered once.
pub struct Metrics {
    registry: Registry,
    exported_peers: Mutex<BTreeSet<String>>,
    max_peer_series: usize,
    peer_rtt: Family<PeerLabels, Histogram, fn() -> Histogram>,
    peer_probes: Family<PeerLabels, Counter>,
    peer_loss: Family<PeerLabels, FloatGauge>,
    peer_throughput: Family<PeerDirectionLabels, FloatGauge>,
    peer_throughput_time: Family<PeerLabels, FloatGauge>,
    peers: Gauge,
    peers_without_series: Gauge,
    tests: Family<TestLabels, Counter>,
    test_bytes: Family<RoleLabels, Counter>,
    collector_duration: Family<CollectorLabels, FloatGauge>,
    collector_success: Family<CollectorLabels, Gauge>,
    collector_outcome: Family<OutcomeLabels, Gauge>,
    gpu_info: Family<GpuInfoLabels, Gauge>,
    gpu_util: Family<GpuLabels, FloatGauge>,
    gpu_mem_util: Family<GpuLabels, FloatGauge>,
    gpu_mem_used: Family<GpuLabels, Gauge>,
    gpu_mem_total: Family<GpuLabels, Gauge>,
    gpu_temp: Family<GpuLabels, Gauge>,
    gpu_power: Family<GpuLabels, FloatGauge>,
    gpu_power_limit: Family<GpuLabels, FloatGauge>,
    gpu_pcie_gen: Family<GpuLabels, Gauge>,
    gpu_pcie_width: Family<GpuLabels, Gauge>,
    cpu_util: FloatGauge,
    publish_writes: Family<ReasonLabels, Counter>,
    publish_bytes: Counter,
    publish_errors: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("max_peer_series", &self.max_peer_series)
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// Registers every family; at most `max_peer_series` peers get series of their own.
    pub fn new(max_peer_series: usize) -> Self {
        let mut m = Metrics {
            registry: Registry::default(),
            exported_peers: Mutex::new(BTreeSet::new()),
            max_peer_series,
            peer_rtt: Family::new_with_constructor(rtt_histogram),
            peer_probes: Family::default(),
            peer_loss: Family::default(),
            peer_throughput: Family::default(),
            peer_throughput_time: Family::default(),
            peers: Gauge::default(),
            peers_without_series: Gauge::default(),
            tests: Family::default(),
            test_bytes: Family::default(),
            collector_duration: Family::default(),
            collector_success: Family::default(),
            collector_outcome: Family::default(),
            gpu_info: Family::default(),
            gpu_util: Family::default(),
            gpu_mem_util: Family::default(),
            gpu_mem_used: Family::default(),
            gpu_mem_total: Family::default(),
            gpu_temp: Family::default(),
            gpu_power: Family::default(),
            gpu_power_limit: Family::default(),
            gpu_pcie_gen: Family::default(),
            gpu_pcie_width: Family::default(),
            cpu_util: FloatGauge::default(),
            publish_writes: Family::default(),
            publish_bytes: Counter::default(),
            publish_errors: Counter::default(),
        };
        let r = &mut m.registry;
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").into(),
            })
            .set(1);
        r.register(
            "linkmeter_build_info",
            "Build of the running agent (always 1)",
            build,
        );
        r.register(
            "linkmeter_peer_rtt_seconds",
            "ICMP echo round-trip time to the peer",
            m.peer_rtt.clone(),
        );
        r.register(
            "linkmeter_peer_probes",
            "ICMP echo requests sent to the peer",
            m.peer_probes.clone(),
        );
        r.register(
            "linkmeter_peer_loss_ratio",
            "Share of echo requests without a reply over the RTT window",
            m.peer_loss.clone(),
        );
        r.register(
            "linkmeter_peer_throughput_bits_per_second",
            "TCP goodput of the last test with the peer (direction tx: to the peer, rx: from it)",
            m.peer_throughput.clone(),
        );
        r.register(
            "linkmeter_peer_throughput_timestamp_seconds",
            "Unix time of the last successful throughput test with the peer",
            m.peer_throughput_time.clone(),
        );
        r.register(
            "linkmeter_peers",
            "Peers this node measures",
            m.peers.clone(),
        );
        r.register(
            "linkmeter_peers_without_series",
            "Peers folded into peer=\"_other\" because of --max-peer-series",
            m.peers_without_series.clone(),
        );
        r.register(
            "linkmeter_throughput_tests",
            "Throughput tests by role (client, server) and result",
            m.tests.clone(),
        );
        r.register(
            "linkmeter_throughput_test_bytes",
            "Bytes moved by throughput tests, by role (client, server)",
            m.test_bytes.clone(),
        );
        r.register(
            "linkmeter_collector_duration_seconds",
            "Duration of the last run of each collector and prober",
            m.collector_duration.clone(),
        );
        r.register(
            "linkmeter_collector_success",
            "Whether the last run of each collector and prober measured something (1) or \
             not (0: failed, or had nothing to do; linkmeter_collector_outcome says which)",
            m.collector_success.clone(),
        );
        r.register(
            "linkmeter_collector_outcome",
            "How the last run of each collector and prober ended: 1 on its outcome \
             (working, idle: nothing to do, failing), 0 on the others",
            m.collector_outcome.clone(),
        );
        r.register(
            "linkmeter_gpu_info",
            "GPU identity (always 1)",
            m.gpu_info.clone(),
        );
        r.register(
            "linkmeter_gpu_utilization_ratio",
            "GPU busy share",
            m.gpu_util.clone(),
        );
        r.register(
            "linkmeter_gpu_memory_utilization_ratio",
            "GPU memory-controller busy share",
            m.gpu_mem_util.clone(),
        );
        r.register(
            "linkmeter_gpu_memory_used_bytes",
            "GPU framebuffer memory in use",
            m.gpu_mem_used.clone(),
        );
        r.register(
            "linkmeter_gpu_memory_total_bytes",
            "GPU framebuffer memory",
            m.gpu_mem_total.clone(),
        );
        r.register(
            "linkmeter_gpu_temperature_celsius",
            "GPU core temperature",
            m.gpu_temp.clone(),
        );
        r.register(
            "linkmeter_gpu_power_watts",
            "GPU power draw",
            m.gpu_power.clone(),
        );
        r.register(
            "linkmeter_gpu_power_limit_watts",
            "GPU enforced power limit",
            m.gpu_power_limit.clone(),
        );
        r.register(
            "linkmeter_gpu_pcie_link_generation",
            "Current PCIe link generation",
            m.gpu_pcie_gen.clone(),
        );
        r.register(
            "linkmeter_gpu_pcie_link_width",
            "Current PCIe link width (lanes)",
            m.gpu_pcie_width.clone(),
        );
        r.register(
            "linkmeter_system_cpu_utilization_ratio",
            "Share of all CPUs busy between the last two system collections",
            m.cpu_util.clone(),
        );
        m
    }

    /// Registers the `--kube` families: NodeTopology writes and whether the API server
    /// answers (`api_up`, owned by whoever tracks reachability). Only with `--kube`, so
    /// an agent without it exports no misleading `linkmeter_kube_api_up 0`.
    pub fn register_kube(&mut self, api_up: Gauge) {
        let r = &mut self.registry;
        r.register(
            "linkmeter_publish_writes",
            "NodeTopology writes to the API server, by reason (first, heartbeat, links, peers, identity, conditions, gpus, recovery, object)",
            self.publish_writes.clone(),
        );
        r.register(
            "linkmeter_publish_bytes",
            "JSON body bytes of NodeTopology writes sent to the API server",
            self.publish_bytes.clone(),
        );
        r.register(
            "linkmeter_publish_errors",
            "NodeTopology writes and Node reads that failed",
            self.publish_errors.clone(),
        );
        r.register(
            "linkmeter_kube_api_up",
            "Whether the Kubernetes API server served the last request (1) or was unreachable or failing with 5xx (0)",
            api_up,
        );
    }

    /// Counts one NodeTopology write of `bytes` JSON body bytes.
    pub fn count_publish(&self, reason: &str, bytes: usize) {
        self.publish_writes
            .get_or_create(&ReasonLabels {
                reason: reason.into(),
            })
            .inc();
        self.publish_bytes.inc_by(bytes as u64);
    }

    /// Counts a failed API request of the publisher.
    pub fn count_publish_error(&self) {
        self.publish_errors.inc();
    }

    /// The registry, for encoding.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Sets the peer set: the first `max_peer_series` names (sorted) get series of
    /// their own; series of peers that left, or fell past the cap, are removed.
    pub fn set_peers<'a>(&self, names: impl Iterator<Item = &'a str>) {
        let all: BTreeSet<String> = names.map(str::to_owned).collect();
        let exported: BTreeSet<String> = all.iter().take(self.max_peer_series).cloned().collect();
        let mut current = self
            .exported_peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for gone in current.difference(&exported) {
            let l = PeerLabels { peer: gone.clone() };
            self.peer_rtt.remove(&l);
            self.peer_probes.remove(&l);
            self.peer_loss.remove(&l);
            self.peer_throughput_time.remove(&l);
            for d in ["tx", "rx"] {
                self.peer_throughput.remove(&PeerDirectionLabels {
                    peer: gone.clone(),
                    direction: d.into(),
                });
            }
        }
        let overflow = all.len() - exported.len();
        if overflow == 0 {
            let l = PeerLabels {
                peer: OTHER_PEERS.into(),
            };
            self.peer_rtt.remove(&l);
            self.peer_probes.remove(&l);
        }
        self.peers.set(i64::try_from(all.len()).unwrap_or(i64::MAX));
        self.peers_without_series
            .set(i64::try_from(overflow).unwrap_or(i64::MAX));
        *current = exported;
    }

    fn series_name(&self, peer: &str) -> String {
        let exported = self
            .exported_peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if exported.contains(peer) {
            peer.to_owned()
        } else {
            OTHER_PEERS.to_owned()
        }
    }

    /// Records one ICMP round: every reply into the histogram, requests into the
    /// counter, and the window's loss (given by the caller, who owns the windows).
    pub fn record_round(&self, results: &[PeerSamples], window_loss: impl Fn(&str) -> Option<f64>) {
        for r in results {
            let l = PeerLabels {
                peer: self.series_name(&r.peer),
            };
            let h = self.peer_rtt.get_or_create(&l);
            for s in r.samples.iter().flatten() {
                h.observe(s.as_secs_f64());
            }
            self.peer_probes
                .get_or_create(&l)
                .inc_by(r.samples.len() as u64);
            if l.peer != OTHER_PEERS
                && let Some(loss) = window_loss(&r.peer)
            {
                self.peer_loss.get_or_create(&l).set(loss);
            }
        }
    }

    /// Records a throughput figure for one direction (`tx` or `rx`).
    pub fn record_throughput(&self, peer: &str, direction: &str, bps: f64, unix_time: f64) {
        let name = self.series_name(peer);
        if name == OTHER_PEERS {
            return;
        }
        self.peer_throughput
            .get_or_create(&PeerDirectionLabels {
                peer: name.clone(),
                direction: direction.into(),
            })
            .set(bps);
        self.peer_throughput_time
            .get_or_create(&PeerLabels { peer: name })
            .set(unix_time);
    }

    /// Counts a finished throughput test and the bytes it moved.
    pub fn count_test(&self, role: &str, result: &str, bytes: u64) {
        self.tests
            .get_or_create(&TestLabels {
                role: role.into(),
                result: result.into(),
            })
            .inc();
        if bytes > 0 {
            self.test_bytes
                .get_or_create(&RoleLabels { role: role.into() })
                .inc_by(bytes);
        }
    }

    /// Records the duration and outcome of a collector or prober run.
    pub fn observe_collector(&self, name: &str, took: Duration, outcome: Outcome) {
        let l = CollectorLabels {
            collector: name.into(),
        };
        self.collector_duration
            .get_or_create(&l)
            .set(took.as_secs_f64());
        self.collector_success
            .get_or_create(&l)
            .set(i64::from(outcome == Outcome::Working));
        for o in Outcome::ALL {
            let l = OutcomeLabels {
                collector: name.into(),
                outcome: o.label(),
            };
            self.collector_outcome
                .get_or_create(&l)
                .set(i64::from(o == outcome));
        }
    }

    /// Replaces the GPU gauges with `report` (GPUs that vanished lose their series).
    pub fn set_gpu(&self, report: &GpuReport) {
        self.gpu_info.clear();
        for f in [
            &self.gpu_util,
            &self.gpu_mem_util,
            &self.gpu_power,
            &self.gpu_power_limit,
        ] {
            f.clear();
        }
        for f in [
            &self.gpu_mem_used,
            &self.gpu_mem_total,
            &self.gpu_temp,
            &self.gpu_pcie_gen,
            &self.gpu_pcie_width,
        ] {
            f.clear();
        }
        for g in &report.gpus {
            let l = GpuLabels {
                gpu: g.index.to_string(),
                uuid: g.uuid.clone().unwrap_or_default(),
            };
            self.gpu_info
                .get_or_create(&GpuInfoLabels {
                    gpu: l.gpu.clone(),
                    uuid: l.uuid.clone(),
                    name: g.name.clone().unwrap_or_default(),
                    mig_mode: g.mig_mode.clone().unwrap_or_default(),
                })
                .set(1);
            let ratio = |v: Option<u32>, f: &Family<GpuLabels, FloatGauge>| {
                if let Some(v) = v {
                    f.get_or_create(&l).set(f64::from(v.min(100)) / 100.0);
                }
            };
            ratio(g.utilization_gpu_percent, &self.gpu_util);
            ratio(g.utilization_memory_percent, &self.gpu_mem_util);
            let int = |v: Option<u64>, f: &Family<GpuLabels, Gauge>| {
                if let Some(v) = v {
                    f.get_or_create(&l)
                        .set(i64::try_from(v).unwrap_or(i64::MAX));
                }
            };
            int(g.memory_used_bytes, &self.gpu_mem_used);
            int(g.memory_total_bytes, &self.gpu_mem_total);
            int(g.temperature_celsius.map(u64::from), &self.gpu_temp);
            int(g.pcie_generation.map(u64::from), &self.gpu_pcie_gen);
            int(g.pcie_width.map(u64::from), &self.gpu_pcie_width);
            if let Some(mw) = g.power_usage_mw {
                self.gpu_power.get_or_create(&l).set(f64::from(mw) / 1000.0);
            }
            if let Some(mw) = g.power_limit_mw {
                self.gpu_power_limit
                    .get_or_create(&l)
                    .set(f64::from(mw) / 1000.0);
            }
        }
    }

    /// Updates the system gauges from `report`.
    pub fn set_system(&self, report: &SystemReport) {
        if let Some(p) = report
            .summary
            .as_ref()
            .and_then(|s| s.cpu_utilization_permille)
        {
            self.cpu_util.set(f64::from(p) / 1000.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use linkmeter_runtime::metrics_http::encode_text;

    use super::*;

    fn round(peer: &str, rtts_us: &[Option<u64>]) -> PeerSamples {
        PeerSamples {
            peer: peer.into(),
            addr: "192.0.2.1".parse().expect("literal"),
            samples: rtts_us
                .iter()
                .map(|v| v.map(Duration::from_micros))
                .collect(),
            error: None,
        }
    }

    #[test]
    fn peers_beyond_the_cap_fold_into_other_and_leave_no_series() {
        let m = Metrics::new(2);
        m.set_peers(["a", "b", "c", "d"].into_iter());
        m.record_round(
            &[
                round("a", &[Some(30)]),
                round("c", &[Some(40)]),
                round("d", &[None]),
            ],
            |_| Some(0.0),
        );
        let text = encode_text(m.registry()).expect("encode");
        assert!(
            text.contains("linkmeter_peer_rtt_seconds_bucket{le=\"0.000025\",peer=\"a\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("linkmeter_peer_rtt_seconds_bucket{le=\"0.00005\",peer=\"a\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("linkmeter_peer_probes_total{peer=\"_other\"} 2"),
            "{text}"
        );
        assert!(!text.contains("peer=\"c\""));
        assert!(text.contains("linkmeter_peers_without_series 2"));

        m.set_peers(["a"].into_iter());
        let text = encode_text(m.registry()).expect("encode");
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert!(
            !samples.iter().any(|l| l.contains("peer=\"_other\"")),
            "{text}"
        );
        assert!(text.contains("linkmeter_peers 1"));
    }
}
