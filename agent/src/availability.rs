//! Whether a measurement source (ICMP sockets, NVML, /proc) could be used, in the
//! measuring code's own terms. Probes and collectors return it; the status mapping
//! (the `status` module) turns it into the API condition of its kind, so measurement code
//! never builds API objects.

use serde::Serialize;

/// Whether a source answered, and why (not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Availability {
    /// The source could be used.
    pub available: bool,
    /// One CamelCase word: why (`Initialized`, `LibraryNotFound`, `SocketDenied`, ...).
    pub reason: String,
    /// Details for people; empty when there are none.
    pub message: String,
}

impl Availability {
    /// A source that could be used.
    pub fn up(reason: &str, message: impl Into<String>) -> Self {
        Availability {
            available: true,
            reason: reason.to_owned(),
            message: message.into(),
        }
    }

    /// A source that could not be used.
    pub fn down(reason: &str, message: impl Into<String>) -> Self {
        Availability {
            available: false,
            reason: reason.to_owned(),
            message: message.into(),
        }
    }
}
