//! TCP throughput tests speaking the iperf3 protocol.
//!
//! Our [`client`] works against a stock `iperf3 -s`, and a stock `iperf3 -c` (also with
//! `-R` and `-P N`) works against our [`server`]. Unlike iperf3, the client stops as soon
//! as the estimate converged ([`estimator`]) instead of after a fixed time, so a probe
//! moves a fraction of the bytes of `iperf3 -t 10` for the same figure.
//!
//! - [`protocol`]: message types and parsers (pure; fuzzed in `fuzz/`).
//! - [`control`]: framed control-channel I/O with timeouts and size limits.
//! - [`stream`]: data-stream tasks with fixed buffers.
//! - [`estimator`]: adaptive stop (pure).
//! - [`tcp_info`]: kernel `TCP_INFO` (bytes acked/received, retransmits, RTT).
//! - [`allow`]: the server's client-network allowlist.
//! - [`cli`]: `probe` and `serve` arguments and entry points.

pub mod allow;
pub mod cli;
pub mod client;
pub(crate) mod control;
pub mod estimator;
pub mod protocol;
pub mod server;
pub(crate) mod stream;
pub mod tcp_info;

pub use cli::{ProbeArgs, ServeArgs, run_probe, run_serve};
pub use client::{ClientConfig, Direction, DirectionReport, StopReason};
pub use server::{Server, ServerConfig, ServerTestSummary, TestOutcome};

use protocol::ProtocolError;

/// Errors of throughput tests, client and server side.
#[derive(Debug, thiserror::Error)]
pub enum ThroughputError {
    /// Bad configuration or command-line value (the CLI maps this to exit code 64).
    #[error("{0}")]
    Config(String),
    /// Socket error.
    #[error("I/O error: {0}")]
    Io(std::io::Error),
    /// The peer broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(ProtocolError),
    /// The peer did not answer in time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The peer closed the connection.
    #[error("the peer closed the connection")]
    Closed,
    /// The server is running another test (iperf3's ACCESS_DENIED).
    #[error("the server is busy running a test")]
    Busy,
    /// The server rejected the test (iperf3's SERVER_ERROR).
    #[error("the server refused the test: {} (iperf3 error {code})", iperf_error_text(*.code))]
    ServerError {
        /// iperf3's `i_errno`.
        code: i32,
        /// The server's `errno`.
        errno: i32,
    },
    /// The server ended the test early (SERVER_TERMINATE).
    #[error("the server terminated the test")]
    ServerTerminated,
    /// The client ended the test early (CLIENT_TERMINATE).
    #[error("the client terminated the test")]
    ClientTerminated,
}

// Written out rather than `#[from]`, which would also make the inner error the
// `source()` and print it twice in `{:#}` chains.
impl From<std::io::Error> for ThroughputError {
    fn from(e: std::io::Error) -> Self {
        ThroughputError::Io(e)
    }
}

impl From<ProtocolError> for ThroughputError {
    fn from(e: ProtocolError) -> Self {
        ThroughputError::Protocol(e)
    }
}

impl ThroughputError {
    /// Whether this is a configuration error (exit code 64 at the CLI).
    pub fn is_config(&self) -> bool {
        matches!(self, ThroughputError::Config(_))
    }
}

/// A short text for the iperf3 error codes a server is likely to send.
fn iperf_error_text(code: i32) -> &'static str {
    match code {
        5 => "test duration too long",
        6 => "number of parallel streams too large",
        13 => "an option is not implemented",
        18 => "no SCTP support",
        25 => "cannot be both reverse and bidirectional",
        27 => "total requested bandwidth above the server's limit",
        114 => "unable to receive parameters",
        131 => "protocol does not exist",
        142 => "test authorization failed",
        _ => "see iperf3's iperf_api.h",
    }
}
