//! When to compute next: soon after a change, but at most once per `--interval`; and,
//! with no change at all, every `refresh` (four intervals) so that a node whose reports
//! stopped turns stale in the view without anything else happening.

use std::time::Duration;

use tokio::time::Instant;

/// The computation's schedule. Pure: every method takes "now" or returns a deadline, so
/// tests drive it with made-up instants.
#[derive(Clone, Debug)]
pub struct Pacer {
    interval: Duration,
    refresh: Duration,
    last: Option<Instant>,
    dirty: bool,
}

impl Pacer {
    /// A schedule that has not computed yet; the first computation is due as soon as
    /// something marks it dirty (the stores becoming ready do).
    pub fn new(interval: Duration, refresh: Duration) -> Self {
        Pacer {
            interval,
            refresh: refresh.max(interval),
            last: None,
            dirty: false,
        }
    }

    /// Something changed (or a write failed and should be retried).
    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// When the next computation is due; `None`: only a change can bring one (before the
    /// first computation, with nothing changed). A deadline in the past means "now".
    pub fn due(&self) -> Option<Instant> {
        match (self.last, self.dirty) {
            (None, false) => None,
            // The first computation runs at once: nothing came before it to space from.
            (None, true) => Some(Instant::now()),
            (Some(last), true) => Some(last + self.interval),
            (Some(last), false) => Some(last + self.refresh),
        }
    }

    /// A computation started at `at`: changes until now are in it.
    pub fn ran(&mut self, at: Instant) {
        self.last = Some(at);
        self.dirty = false;
    }
}

/// Sleeps until `due`, or forever without one (a `select!` arm that never fires).
pub async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn nothing_is_due_before_the_first_change() {
        let p = Pacer::new(30 * S, 120 * S);
        assert_eq!(p.due(), None);
    }

    #[test]
    fn the_first_change_computes_at_once() {
        let mut p = Pacer::new(30 * S, 120 * S);
        p.mark_dirty();
        let due = p.due().expect("due");
        assert!(due <= Instant::now());
    }

    #[test]
    fn changes_are_spaced_by_the_interval() {
        let t0 = Instant::now();
        let mut p = Pacer::new(30 * S, 120 * S);
        p.mark_dirty();
        p.ran(t0);
        assert_eq!(p.due(), Some(t0 + 120 * S), "no change: the refresh");
        // A burst of changes right after: one computation, one interval later.
        p.mark_dirty();
        p.mark_dirty();
        assert_eq!(p.due(), Some(t0 + 30 * S));
        p.ran(t0 + 30 * S);
        assert_eq!(p.due(), Some(t0 + 150 * S));
    }

    #[test]
    fn a_change_long_after_the_last_computation_runs_at_once() {
        let t0 = Instant::now();
        let mut p = Pacer::new(30 * S, 120 * S);
        p.ran(t0);
        p.mark_dirty();
        // Due at t0+30s; at t0+100s that is in the past, so the loop computes at once.
        assert!(p.due().expect("due") < t0 + 100 * S);
    }

    #[test]
    fn the_refresh_is_never_shorter_than_the_interval() {
        let t0 = Instant::now();
        let mut p = Pacer::new(30 * S, 10 * S);
        p.ran(t0);
        assert_eq!(p.due(), Some(t0 + 30 * S));
    }
}
