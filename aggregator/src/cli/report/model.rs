//! What the report says, in one structure: `--json` prints it, the text form renders
//! it, so both carry the same content.

use serde::Serialize;

use crate::api::ClusterTopologyStatus;
use crate::cluster::Output;

/// Measured links listed as the worst.
pub const WORST_LINKS: usize = 10;

/// The report: the ClusterTopology status plus the worst measured links.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// What the ClusterTopology would say.
    #[serde(flatten)]
    pub status: ClusterTopologyStatus,
    /// The measured node pairs with the highest RTT p50, worst first.
    pub worst_links: Vec<WorstLink>,
}

/// One measured node pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorstLink {
    /// One node.
    pub from: String,
    /// The other.
    pub to: String,
    /// Merged RTT p50, µs.
    pub rtt_p50_us: u64,
    /// Merged RTT p90, µs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt_p90_us: Option<u64>,
    /// Goodput `from` → `to`, kbit/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tx_kbps: Option<u64>,
    /// Goodput `to` → `from`, kbit/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rx_kbps: Option<u64>,
}

impl Report {
    /// The report of one calculation.
    pub fn new(out: &Output) -> Report {
        let mut links: Vec<WorstLink> = out
            .measured_pairs()
            .filter_map(|p| {
                Some(WorstLink {
                    rtt_p50_us: p.rtt_p50_us?,
                    rtt_p90_us: p.rtt_p90_us,
                    tx_kbps: p.tx_kbps,
                    rx_kbps: p.rx_kbps,
                    from: p.from,
                    to: p.to,
                })
            })
            .collect();
        // Worst first; names break ties so the report is the same every time.
        links.sort_by(|a, b| {
            b.rtt_p50_us
                .cmp(&a.rtt_p50_us)
                .then_with(|| a.from.cmp(&b.from))
                .then_with(|| a.to.cmp(&b.to))
        });
        links.truncate(WORST_LINKS);
        Report {
            status: out.cluster.clone(),
            worst_links: links,
        }
    }
}
