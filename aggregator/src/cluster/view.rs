//! [`compute`]: the whole calculation, from checked input to both objects.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::api::{
    ClusterTopologyStatus, DEFAULT_WEIGHTS_NAME, ModelQuality, NetworkTopologySpec,
    NetworkTopologyStatus, NodeTopology,
};
use crate::coords::{self, FitConfig, Model, Sample};

use super::groups::{self, CostRule};
use super::input::{self, NodeInfo, Skipped};
use super::network;
use super::nodes;
use super::pairs::{self, MeasuredPair, PairTable};

/// How the view is calculated.
#[derive(Clone, Debug)]
pub struct Options {
    /// "Now", for staleness (injected so tests and `compute` are reproducible).
    pub now: jiff::Timestamp,
    /// A NodeTopology whose `observedAt` is older than this is stale.
    pub stale_after: Duration,
    /// `weights[].name` of the NetworkTopology.
    pub weights_name: String,
    /// `spec.configmapName` of the NetworkTopology.
    pub configmap_name: String,
    /// How the zone/region p90 RTT becomes `networkCost`.
    pub cost: CostRule,
    /// The coordinate fit.
    pub fit: FitConfig,
}

impl Options {
    /// Defaults at `now`: 15 min staleness, `UserDefined` weights, 1 ms cost unit.
    pub fn at(now: jiff::Timestamp) -> Self {
        Options {
            now,
            stale_after: Duration::from_secs(15 * 60),
            weights_name: DEFAULT_WEIGHTS_NAME.to_owned(),
            configmap_name: "linkmeter-aggregator".to_owned(),
            cost: CostRule::default(),
            fit: FitConfig::default(),
        }
    }
}

/// The RTT of one ordered node pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prediction {
    /// RTT, µs: the merged measurement when `measured`, else the coordinates' estimate.
    pub rtt_us: u64,
    /// True when some end measured the pair.
    pub measured: bool,
}

/// Everything one calculation produced.
#[derive(Clone, Debug)]
pub struct Output {
    /// The `ClusterTopology` status (its `calculationMillis` is left 0 for the caller,
    /// which knows the CPU time it took).
    pub cluster: ClusterTopologyStatus,
    /// The NetworkTopology spec.
    pub network: NetworkTopologySpec,
    /// The NetworkTopology status.
    pub network_status: NetworkTopologyStatus,
    /// What was skipped or clipped, one line each, bounded (for logs).
    pub warnings: Vec<String>,
    /// Skipped counts by reason (also in `cluster.skipped`).
    pub skipped: Skipped,
    names: Vec<String>,
    index: BTreeMap<String, usize>,
    pairs: PairTable,
    model: Model,
}

impl Output {
    /// Every measured pair once (`from` < `to` by name), with its merged figures.
    pub fn measured_pairs(&self) -> impl Iterator<Item = MeasuredPair> + '_ {
        self.pairs.iter().map(|((a, b), p)| MeasuredPair {
            from: self.names[a].clone(),
            to: self.names[b].clone(),
            rtt_p50_us: p.rtt_p50_us,
            rtt_p90_us: p.rtt_p90_us,
            tx_kbps: p.ab_kbps,
            rx_kbps: p.ba_kbps,
        })
    }

    /// Names of the nodes in the view, sorted.
    pub fn node_names(&self) -> &[String] {
        &self.names
    }

    /// Goodput `from` → `to` as measured (either end's test, merged), kbit/s; `None`
    /// when nobody measured it or a name is unknown.
    pub fn goodput_kbps(&self, from: &str, to: &str) -> Option<u64> {
        self.goodput_at_kbps(self.index_of(from)?, self.index_of(to)?)
    }

    /// [`Output::goodput_kbps`] by position in [`Output::node_names`].
    pub fn goodput_at_kbps(&self, from: usize, to: usize) -> Option<u64> {
        self.pairs.get(from, to)?.ab_kbps
    }

    /// Position of a node in [`Output::node_names`].
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// RTT of `from` → `to`: measured where some end measured it, else predicted;
    /// `None` for an unknown node, the same node twice, or a node the coordinates know
    /// nothing about.
    pub fn predict(&self, from: &str, to: &str) -> Option<Prediction> {
        self.predict_at(self.index_of(from)?, self.index_of(to)?)
    }

    /// [`Output::predict`] by position in [`Output::node_names`].
    pub fn predict_at(&self, a: usize, b: usize) -> Option<Prediction> {
        if a == b {
            return None;
        }
        if let Some(pair) = self.pairs.get(a, b)
            && let Some(rtt) = pair.rtt_p50_us
        {
            return Some(Prediction {
                rtt_us: rtt,
                measured: true,
            });
        }
        let rtt = self.model.predict(a, b)?;
        Some(Prediction {
            rtt_us: rtt.round().max(1.0) as u64,
            measured: false,
        })
    }
}

/// Runs the whole calculation. `nodes`: the cluster's Node objects, reduced (`None` when
/// only NodeTopologies are at hand, as in `predict` without `--nodes`: then every
/// NodeTopology counts as a node).
pub fn compute(nodes: Option<&[NodeInfo]>, topologies: &[NodeTopology], opts: &Options) -> Output {
    let checked = input::check(nodes, topologies, opts.now, opts.stale_after);
    let names: Vec<String> = checked.nodes.iter().map(|n| n.name.clone()).collect();
    let index: BTreeMap<String, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), i))
        .collect();
    let table = pairs::merge(&checked);

    // Cross-validation: a fixed tenth of the measured pairs (by a hash of the names, so
    // the same pairs every time) is held out of the fit and predicted.
    // A pair is held out only when both its nodes keep enough samples without it, so
    // cross-validation never leaves a node without a coordinate.
    let mut degree = vec![0usize; names.len()];
    for ((a, b), pair) in table.iter() {
        if pair.rtt_p50_us.is_some() {
            degree[a] += 1;
            degree[b] += 1;
        }
    }
    let mut fit_samples = Vec::new();
    let mut held_out = Vec::new();
    for ((a, b), pair) in table.iter() {
        let Some(rtt) = pair.rtt_p50_us else { continue };
        let sample = Sample {
            a,
            b,
            rtt_us: rtt as f64,
        };
        if degree[a] >= MIN_DEGREE_TO_HOLD_OUT
            && degree[b] >= MIN_DEGREE_TO_HOLD_OUT
            && pairs::held_out(&names[a], &names[b])
        {
            held_out.push(sample);
        } else {
            fit_samples.push(sample);
        }
    }
    let model = coords::fit(names.len(), &fit_samples, &opts.fit);
    let mut errors: Vec<f64> = held_out
        .iter()
        .filter_map(|s| {
            let p = model.predict(s.a, s.b)?;
            Some((p - s.rtt_us).abs() / s.rtt_us)
        })
        .collect();
    let quality = coords::median_p90(&mut errors);
    let model_quality = ModelQuality {
        dimensions: u32::try_from(opts.fit.dims).unwrap_or(u32::MAX),
        fitted_pairs: u32::try_from(fit_samples.len()).unwrap_or(u32::MAX),
        held_out_pairs: u32::try_from(errors.len()).unwrap_or(u32::MAX),
        median_error_permille: quality.map(|(m, _)| permille(m)),
        p90_error_permille: quality.map(|(_, p)| permille(p)),
    };

    let summaries = nodes::summarise(&checked, &table, &model, opts.now);
    let skipped_counts = checked.skipped.to_counts();
    let zone_pairs = groups::fold(&checked, &table, &model, groups::Level::Zone, &opts.cost);
    let region_pairs = groups::fold(&checked, &table, &model, groups::Level::Region, &opts.cost);
    let network = network::render(&zone_pairs, &region_pairs, opts);
    let stale_nodes: Vec<String> = checked
        .nodes
        .iter()
        .filter(|n| n.stale)
        .map(|n| n.name.clone())
        .collect();
    let zone_count = summaries.len();
    let cluster = ClusterTopologyStatus {
        calculated_at: Some(opts.now.to_string()),
        calculation_millis: 0,
        node_count: u32::try_from(names.len()).unwrap_or(u32::MAX),
        stale_node_count: u32::try_from(stale_nodes.len()).unwrap_or(u32::MAX),
        zone_count: u32::try_from(zone_count).unwrap_or(u32::MAX),
        zones: summaries,
        zone_pairs,
        region_pairs,
        stale_nodes,
        model: Some(model_quality),
        skipped: skipped_counts,
    };
    let network_status = NetworkTopologyStatus {
        node_count: Some(i64::try_from(names.len()).unwrap_or(i64::MAX)),
        weight_calculation_time: Some(opts.now.to_string()),
    };
    let mut warnings = checked.warnings;
    let listed = warnings.len() as u64;
    if checked.skipped.total() > listed {
        warnings.push(format!(
            "and {} more skipped items (see the counts)",
            checked.skipped.total() - listed
        ));
    }
    Output {
        cluster,
        network,
        network_status,
        warnings,
        skipped: checked.skipped,
        names,
        index,
        pairs: table,
        model,
    }
}

/// Measured pairs a node needs before one of them may be held out of the fit.
const MIN_DEGREE_TO_HOLD_OUT: usize = 4;

fn permille(x: f64) -> u32 {
    (x * 1000.0).round().clamp(0.0, f64::from(u32::MAX)) as u32
}
