//! How a collector's or prober's last run ended, in three states a dashboard can tell
//! apart: it measured something, it had nothing to do (no NVML on a node without GPUs,
//! every peer busy, no peers), or it failed.

/// The outcome of one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It measured what it is for.
    Working,
    /// Nothing to do, through no fault: no NVML library, peers busy, nobody to probe.
    Idle,
    /// It tried and failed (no reply at all, an error, a panic, a hang).
    Failing,
}

impl Outcome {
    /// Every outcome, in the order the metrics list them.
    pub const ALL: [Outcome; 3] = [Outcome::Working, Outcome::Idle, Outcome::Failing];

    /// The `outcome` label value.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Working => "working",
            Outcome::Idle => "idle",
            Outcome::Failing => "failing",
        }
    }

    /// A client throughput test by its `result` counter label: `ok` measured, `busy` was
    /// refused by a peer already testing (normal, but nothing was measured), anything
    /// else failed.
    pub fn of_test(result: &str) -> Outcome {
        match result {
            "ok" => Outcome::Working,
            "busy" => Outcome::Idle,
            _ => Outcome::Failing,
        }
    }

    /// An ICMP round: any reply means it works; no targets means nothing to do; targets
    /// and not one reply means it fails.
    pub fn of_round(targets: usize, any_reply: bool) -> Outcome {
        match (targets, any_reply) {
            (_, true) => Outcome::Working,
            (0, false) => Outcome::Idle,
            _ => Outcome::Failing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_peers_and_no_targets_are_idle_not_success() {
        assert_eq!(Outcome::of_test("ok"), Outcome::Working);
        assert_eq!(Outcome::of_test("busy"), Outcome::Idle);
        assert_eq!(Outcome::of_test("error"), Outcome::Failing);
        assert_eq!(Outcome::of_round(3, true), Outcome::Working);
        assert_eq!(Outcome::of_round(0, false), Outcome::Idle);
        assert_eq!(Outcome::of_round(3, false), Outcome::Failing);
        let labels: Vec<_> = Outcome::ALL.iter().map(|o| o.label()).collect();
        assert_eq!(labels, ["working", "idle", "failing"]);
    }
}
