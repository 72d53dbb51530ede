//! Process plumbing that `linkmeter-agent` and `linkmeter-aggregator` share, so that
//! both stop, exit, log, serve `/metrics` and reach the API server the same way.
//!
//! - [`shutdown`]: SIGTERM/SIGINT cancel a token every task watches.
//! - [`exit`]: the sysexits(3) statuses.
//! - [`usage`]: clap's parse errors as one line, help and version as clap prints them.
//! - [`logging`]: the `tracing` subscriber on stderr, text or JSON.
//! - [`metrics_http`]: `/metrics` content negotiation, the text 0.0.4 format, gzip.
//! - [`kube_client`]: a client from `--kubeconfig`, the in-cluster config, or defaults.
//!
//! Each binary keeps what is its own: flag names and defaults, program names in error
//! lines, which exit status a failure maps to.

pub mod exit;
pub mod kube_client;
pub mod logging;
pub mod metrics_http;
pub mod shutdown;
pub mod usage;
