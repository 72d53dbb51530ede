//! Publishing NodeTopology status: the pure decision of whether a status moved enough
//! to write ([`hysteresis`]) and the state machine of what to write next and when
//! ([`planner`]: light heartbeats, periodic full refresh, outage and recovery).

pub mod hysteresis;
pub mod planner;

pub use hysteresis::{Decision, Hysteresis, Reason};
pub use planner::{Plan, PublishPlanner, REASON_RECOVERY};
