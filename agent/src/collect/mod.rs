//! Collectors of node facts, one module each, behind the narrow [`Collector`] trait.
//!
//! A collector never fails the caller: whatever goes wrong is folded into its report
//! (a condition with a reason, per-field errors), so one broken source cannot take the
//! others down.

pub mod gpu;
pub mod system;

/// A source of one kind of node facts.
///
/// `collect` may block (NVML calls, reading /proc, sleeping between CPU samples); async
/// callers run it on a blocking thread.
pub trait Collector: Send {
    /// What one collection produces.
    type Report;
    /// Short stable name, used in logs and per-collector metrics.
    fn name(&self) -> &'static str;
    /// Collects once. Never panics on bad input from the host; errors go into the report.
    fn collect(&mut self) -> Self::Report;
}
