//! Publishing NodeTopology status: the pure decision of when to write
//! ([`hysteresis`]).

pub mod hysteresis;

pub use hysteresis::{Decision, Hysteresis, Reason};
