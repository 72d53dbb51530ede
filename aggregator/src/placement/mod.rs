//! Placement on the measured network and GPUs: what a pod asks ([`request`]), what each
//! node offers ([`world`]), and the verdict and score per node ([`evaluate`]). Pure: the
//! extender, `explain` and the bench all call [`evaluate::evaluate`].

pub mod bandwidth;
pub mod evaluate;
pub mod labels;
pub mod quantity;
pub mod request;
pub mod seed;
pub mod selector;
pub mod units;
pub mod world;

pub use evaluate::{Detail, MAX_SCORE, Verdict, evaluate};
pub use request::{AnnotationError, PodRequest};
pub use selector::Selector;
pub use world::{GpuFacts, NodeFacts, PlacedPod, PodUnderPlacement, World, placed};
