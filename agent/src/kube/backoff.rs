//! Exponential back-off with jitter for retrying API requests.

use std::time::Duration;

use rand::Rng;

/// Doubles from `base` up to `cap`; each delay is drawn from the upper half of the
/// current step ("equal jitter"), so agents that failed together do not retry
/// together, yet none retries much sooner than the step.
#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    /// A back-off starting at `base`, never above `cap`.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Backoff {
            base,
            cap: cap.max(base),
            attempt: 0,
        }
    }

    /// The delay before the next retry.
    pub fn next_delay(&mut self) -> Duration {
        let step = self
            .base
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        let half = step / 2;
        half + half.mul_f64(rand::rng().random_range(0.0..=1.0))
    }

    /// Back to `base` after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_with_jitter_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        let first = b.next_delay();
        assert!(first >= Duration::from_millis(500) && first <= Duration::from_secs(1));
        for _ in 0..20 {
            let d = b.next_delay();
            assert!(d <= Duration::from_secs(30), "{d:?}");
        }
        let late = b.next_delay();
        assert!(late >= Duration::from_secs(15), "{late:?}");
        b.reset();
        assert!(b.next_delay() <= Duration::from_secs(1));
    }
}
