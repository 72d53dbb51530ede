//! linkmeter's shared library: the topology API (custom resource types), and the pure
//! aggregation code (windows, percentiles, quantization) that both the node agent and the
//! cluster aggregator use.
//!
//! Nothing here does I/O; the agent and the aggregator binary own the sockets and the
//! API client. That keeps every decision unit-testable.

pub mod api;
pub mod cluster;
pub mod coords;
pub mod peers;
pub mod publish;
pub mod summary;
