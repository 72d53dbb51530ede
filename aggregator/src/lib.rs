//! linkmeter's shared library: the topology API (custom resource types), and the pure
//! aggregation code (windows, percentiles, quantization) that both the node agent and the
//! cluster aggregator use.
//!
//! Pure modules (no I/O, so every decision is unit-testable): `api`, `cluster`,
//! `placement` (what a pod asks, what each node offers, verdicts and scores), `extender`
//! (kube-scheduler's wire format over `placement`),
//! `coords`, `peers`, `publish`, `summary`. The aggregator binary's I/O lives apart, in
//! `cli` (commands, files) and `controller` (the in-cluster `run`), and nothing pure
//! imports them.

pub mod api;
pub mod cli;
pub mod cluster;
pub mod controller;
pub mod coords;
pub mod extender;
pub mod peers;
pub mod placement;
pub mod publish;
pub mod summary;
