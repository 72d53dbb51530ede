//! Latency probes.
