//! Is the Kubernetes API server reachable? One answer for the whole agent.
//!
//! Discovery's watch and the publisher's writes both report here. The transitions
//! (not each failed request) are logged, so an outage of an hour writes two lines,
//! not thousands, and `linkmeter_kube_api_up` follows the latest request. A recovery
//! is announced on a watch channel so the publisher can rewrite its (now stale)
//! object at once.

use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::watch;

/// Reachability as last observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reach {
    /// No request has finished yet.
    Unknown,
    /// The last request got an answer from the server.
    Up,
    /// The last request got none; since when.
    Down(Instant),
}

/// Shared reachability state of the API server.
#[derive(Debug)]
pub struct ApiHealth {
    reach: Mutex<Reach>,
    gauge: Gauge,
    recoveries: watch::Sender<u64>,
}

impl Default for ApiHealth {
    fn default() -> Self {
        Self::new()
    }
}

impl ApiHealth {
    /// Unknown until the first request finishes; the gauge reads 0 until then.
    pub fn new() -> Self {
        ApiHealth {
            reach: Mutex::new(Reach::Unknown),
            gauge: Gauge::default(),
            recoveries: watch::channel(0).0,
        }
    }

    /// The `linkmeter_kube_api_up` gauge, to register (a handle on the same value).
    pub fn gauge(&self) -> Gauge {
        self.gauge.clone()
    }

    /// A receiver that changes each time the server comes back after an outage.
    pub fn recoveries(&self) -> watch::Receiver<u64> {
        self.recoveries.subscribe()
    }

    /// Whether the last request got an answer.
    pub fn is_up(&self) -> bool {
        *self.lock() == Reach::Up
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Reach> {
        self.reach.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A request by `who` was served (success or a 4xx answer).
    pub fn reachable(&self, who: &'static str) {
        let mut reach = self.lock();
        match *reach {
            Reach::Up => return,
            Reach::Unknown => tracing::info!(by = who, "connected to the Kubernetes API"),
            Reach::Down(since) => {
                tracing::info!(
                    by = who,
                    down_for_s = since.elapsed().as_secs(),
                    "Kubernetes API reachable again"
                );
                self.recoveries.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
        *reach = Reach::Up;
        self.gauge.set(1);
    }

    /// A request by `who` was not served (connection refused, reset, timed out, 5xx).
    pub fn unreachable(&self, who: &'static str, error: &dyn std::fmt::Display) {
        let mut reach = self.lock();
        if matches!(*reach, Reach::Down(_)) {
            return;
        }
        tracing::warn!(
            by = who,
            error = %error,
            "Kubernetes API unreachable; will keep retrying"
        );
        *reach = Reach::Down(Instant::now());
        self.gauge.set(0);
    }

    /// Records the outcome of a failed request and says whether it was an outage
    /// (see [`is_outage`]) rather than an answer about the request.
    pub fn record_error(&self, who: &'static str, error: &::kube::Error) -> bool {
        if is_outage(error) {
            self.unreachable(who, error);
            true
        } else {
            self.reachable(who);
            false
        }
    }
}

/// True when `error` means the server could not serve us: no answer (transport
/// failures, TLS problems) or a 5xx status (e.g. 503 while it shuts down or has lost
/// etcd). A 4xx status (403, 404, 409, 422, 429) is an answer about the request.
pub fn is_outage(error: &::kube::Error) -> bool {
    use ::kube::Error as E;
    match error {
        E::Api(status) => status.code >= 500,
        E::HyperError(_) | E::Service(_) | E::ReadEvents(_) | E::RustlsTls(_) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_drive_the_gauge_and_recoveries() {
        let h = ApiHealth::new();
        let mut rx = h.recoveries();
        assert_eq!(h.gauge().get(), 0);
        h.reachable("test");
        assert!(h.is_up());
        assert_eq!(h.gauge().get(), 1);
        assert!(
            !rx.has_changed().unwrap_or(true),
            "first contact is no recovery"
        );
        h.unreachable("test", &"refused");
        h.unreachable("test", &"refused again");
        assert_eq!(h.gauge().get(), 0);
        h.reachable("test");
        assert!(rx.has_changed().unwrap_or(false));
        assert_eq!(*rx.borrow_and_update(), 1);
    }

    #[test]
    fn an_error_status_is_an_answer() {
        let status = ::kube::core::Status::failure("forbidden", "Forbidden").with_code(403);
        let e = ::kube::Error::Api(Box::new(status));
        assert!(!is_outage(&e));
        let down =
            ::kube::core::Status::failure("shutting down", "ServiceUnavailable").with_code(503);
        assert!(is_outage(&::kube::Error::Api(Box::new(down))));
    }
}
