//! Pure summarisation: raw probe samples in, compact integer aggregates out.
//!
//! Raw samples never leave the node; what is published is a window's percentiles
//! rounded to about three significant digits ([`quantize`]).

mod link;
mod quantize;
mod window;

pub use quantize::{quantize, quantize_sig};
pub use window::{RttSummary, RttWindow, percentile_nearest_rank};
