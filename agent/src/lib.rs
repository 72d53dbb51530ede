//! linkmeter node agent: probes, collectors and the CLI behind `linkmeter-agent`.
//!
//! `main.rs` is a thin shell around [`cli`]; everything that measures lives in
//! [`collect`] (node facts), [`probe`] (latency to peers) and [`throughput`] (TCP
//! bandwidth, iperf3-compatible). [`snapshot`] ties them together for one-shot reports;
//! [`daemon`] runs them continuously and [`kube`] adds Node discovery and NodeTopology
//! publishing to it.

pub mod availability;
pub mod cli;
pub mod collect;
pub mod config_file;
pub mod daemon;
pub mod host;
pub mod kube;
pub mod probe;
pub mod snapshot;
pub mod state;
pub mod status;
pub mod throughput;
pub mod units;
