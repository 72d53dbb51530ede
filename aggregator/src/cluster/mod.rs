//! The cluster view: every NodeTopology (and every Node) in, the `ClusterTopology`
//! status and the Diktyo `NetworkTopology` out. Pure: the same input and options give
//! the same output, byte for byte, so the objects do not churn.
//!
//! Steps, one module each: [`input`] checks and clips what the agents wrote (hostile or
//! broken objects are skipped with a counted reason), [`pairs`] merges both ends of
//! every measured pair, [`groups`] folds pairs into zone × zone and region × region
//! figures and costs, [`nodes`] summarises each node (uplink, class), and [`network`]
//! renders the NetworkTopology. The coordinates come from [`crate::coords`].

pub mod groups;
pub mod input;
pub mod network;
pub mod nodes;
pub mod pairs;
pub mod synthetic;
mod view;

pub use input::{NodeInfo, Skipped, add_skipped};
pub use pairs::{MeasuredPair, Pair, PairTable};
pub use view::{Options, Output, Prediction, compute};

#[cfg(test)]
mod tests;
