//! The Grafana dashboard (`manifests/monitoring/grafana-dashboard.json`) held to real
//! data: every panel's PromQL, with Grafana's variables filled in as Grafana would,
//! must return series from the demo's Prometheus, which scrapes the real agents and the
//! aggregator.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::Value;

use super::interrupt;
use crate::agent::http_get;
use crate::prometheus::Prometheus;

/// The dashboard file.
pub fn path() -> std::path::PathBuf {
    crate::aggregator::manifests_dir()
        .join("monitoring")
        .join("grafana-dashboard.json")
}

/// One query of one panel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The panel's title.
    pub panel: String,
    /// The PromQL as written in the dashboard.
    pub expr: String,
}

/// Every panel's queries.
pub fn queries(dashboard: &Value) -> Vec<Query> {
    dashboard["panels"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| {
            let title = p["title"].as_str().unwrap_or_default().to_owned();
            p["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(move |t| {
                    Some(Query {
                        panel: title.clone(),
                        expr: t["expr"].as_str()?.to_owned(),
                    })
                })
        })
        .collect()
}

/// `expr` with the dashboard's variables as Grafana fills them for "All nodes" over a
/// short range (the demo's Prometheus scrapes every 5 s).
pub fn fill(expr: &str) -> String {
    expr.replace("$node", ".*")
        .replace("$__rate_interval", "30s")
        .replace("$__range", "10m")
}

/// The number of series `expr` returns now from `prometheus`.
fn series(prometheus: &Prometheus, expr: &str) -> Result<usize> {
    let body = http_get(None, &prometheus.query_url(expr), None)?;
    let v: Value = serde_json::from_str(&body).context("Prometheus answer")?;
    if v["status"] != "success" {
        anyhow::bail!("Prometheus: {body}");
    }
    Ok(v["data"]["result"].as_array().map_or(0, Vec::len))
}

/// Waits (up to `timeout`) until every query returns data; returns a line per query with
/// its series count, and the problems (queries still empty or failing).
pub fn check(prometheus: &Prometheus, timeout: Duration) -> Result<(Vec<String>, Vec<String>)> {
    let text =
        std::fs::read_to_string(path()).with_context(|| format!("reading {}", path().display()))?;
    let dashboard: Value = serde_json::from_str(&text).context("the dashboard JSON")?;
    let queries = queries(&dashboard);
    let end = Instant::now() + timeout;
    loop {
        interrupt::check()?;
        let mut lines = Vec::new();
        let mut problems = Vec::new();
        for q in &queries {
            match series(prometheus, &fill(&q.expr)) {
                Ok(0) => problems.push(format!("{}: no data for {}", q.panel, q.expr)),
                Ok(n) => lines.push(format!("{:<46} {n:>3} series", q.panel)),
                Err(e) => problems.push(format!("{}: {e:#}", q.panel)),
            }
        }
        if problems.is_empty() || Instant::now() >= end {
            return Ok((lines, problems));
        }
        interrupt::sleep(Duration::from_secs(2))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dashboard_has_the_panels_the_issue_names_and_every_one_queries() {
        let text = std::fs::read_to_string(path()).expect("dashboard");
        let d: Value = serde_json::from_str(&text).expect("JSON");
        let qs = queries(&d);
        let panels: std::collections::BTreeSet<&str> =
            qs.iter().map(|q| q.panel.as_str()).collect();
        for want in [
            "RTT p50 per peer",
            "Packet loss per peer",
            "Throughput per link",
            "GPU utilization",
            "GPU memory",
            "Throughput test outcomes",
            "NodeTopology publish writes",
            "Aggregator: network-coordinate model error",
        ] {
            assert!(panels.contains(want), "no panel {want:?}: {panels:?}");
        }
        let n = d["panels"].as_array().map_or(0, Vec::len);
        assert_eq!(panels.len(), n, "every panel has a query");
        for q in &qs {
            let filled = fill(&q.expr);
            assert!(!filled.contains('$'), "unfilled variable in {filled}");
        }
    }
}
