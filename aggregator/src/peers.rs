//! Which nodes a node probes: a bounded, deterministic, rotating selection.
//!
//! Up to `max` other nodes, every node is a peer. Beyond that, probing all N² pairs
//! costs too much, so a node probes its own zone first (up to half the slots: zone
//! latency is what topology-aware scheduling needs most) and fills the rest with a
//! sample of everyone else that changes every epoch, so over time every pair gets
//! measured. The sample is a rendezvous hash of the *unordered* pair and the epoch: a
//! pair that ranks high for one side ranks equally high for the other, so selections
//! tend to be mutual and both ends of a link publish it. Pure: the same inputs give the
//! same peers on every node and every run.

/// A node that could be probed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Node name.
    pub name: String,
    /// `topology.kubernetes.io/zone`, when labelled.
    pub zone: Option<String>,
}

/// Selects at most `max` peers for `me` (in `me_zone`) among `nodes` (which may include
/// `me`, and duplicates). The result is sorted by name.
pub fn select_peers(
    me: &str,
    me_zone: Option<&str>,
    nodes: &[Candidate],
    max: usize,
    epoch: u64,
) -> Vec<String> {
    let mut others: Vec<&Candidate> = nodes.iter().filter(|c| c.name != me).collect();
    others.sort_by(|a, b| a.name.cmp(&b.name));
    others.dedup_by(|a, b| a.name == b.name);
    if others.len() <= max {
        return others.into_iter().map(|c| c.name.clone()).collect();
    }
    let mut chosen: Vec<String> = Vec::with_capacity(max);
    if let Some(zone) = me_zone {
        // Zone peers rank by a fixed pair score (no epoch) so the zone set is stable.
        let mut same: Vec<&&Candidate> = others
            .iter()
            .filter(|c| c.zone.as_deref() == Some(zone))
            .collect();
        same.sort_by_key(|c| (pair_score(me, &c.name, u64::MAX), c.name.clone()));
        chosen.extend(same.iter().take(max.div_ceil(2)).map(|c| c.name.clone()));
    }
    let mut rest: Vec<&&Candidate> = others
        .iter()
        .filter(|c| !chosen.contains(&c.name))
        .collect();
    rest.sort_by_key(|c| (pair_score(me, &c.name, epoch), c.name.clone()));
    let room = max - chosen.len();
    chosen.extend(rest.iter().take(room).map(|c| c.name.clone()));
    chosen.sort();
    chosen
}

/// Score of the unordered pair {a, b} in `epoch`: equal from both ends.
pub(crate) fn pair_score(a: &str, b: &str, epoch: u64) -> u64 {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut h = fnv1a(FNV_OFFSET, lo.as_bytes());
    h = fnv1a(h, &[0xff]);
    h = fnv1a(h, hi.as_bytes());
    mix(h ^ mix(epoch))
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a: defined bit for bit, so every node (whatever its build) computes the same
/// scores; std's hasher makes no such promise across releases.
fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// splitmix64's finaliser: spreads FNV's weak low bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn cluster(n: usize, zones: usize) -> Vec<Candidate> {
        (0..n)
            .map(|i| Candidate {
                name: format!("node-{i:04}"),
                zone: Some(format!("z{}", i % zones)),
            })
            .collect()
    }

    #[test]
    fn small_clusters_probe_everyone_but_themselves() {
        let nodes = cluster(10, 3);
        let p = select_peers("node-0003", Some("z0"), &nodes, 32, 7);
        assert_eq!(p.len(), 9);
        assert!(!p.contains(&"node-0003".to_owned()));
    }

    #[test]
    fn large_clusters_take_the_zone_first_then_a_sample() {
        let nodes = cluster(1000, 10);
        let p = select_peers("node-0000", Some("z0"), &nodes, 32, 1);
        assert_eq!(p.len(), 32);
        let zone_peers = p
            .iter()
            .filter(|n| {
                nodes
                    .iter()
                    .any(|c| &c.name == *n && c.zone.as_deref() == Some("z0"))
            })
            .count();
        assert!(zone_peers >= 16, "{zone_peers} same-zone peers");
        assert!(zone_peers < 32, "the rest of the cluster is sampled too");
    }

    #[test]
    fn the_sample_rotates_and_covers_the_cluster() {
        let nodes = cluster(300, 1);
        let me = "node-0000";
        let e1 = select_peers(me, None, &nodes, 20, 1);
        let e2 = select_peers(me, None, &nodes, 20, 2);
        assert_ne!(e1, e2);
        let mut seen = BTreeSet::new();
        for epoch in 0..200 {
            seen.extend(select_peers(me, None, &nodes, 20, epoch));
        }
        assert_eq!(seen.len(), 299, "every other node is probed in some epoch");
    }

    #[test]
    fn selections_tend_to_be_mutual() {
        let nodes = cluster(200, 1);
        let sel: Vec<Vec<String>> = nodes
            .iter()
            .map(|c| select_peers(&c.name, None, &nodes, 16, 5))
            .collect();
        let (mut pairs, mut mutual) = (0, 0);
        for (i, peers) in sel.iter().enumerate() {
            for p in peers {
                pairs += 1;
                let j = nodes.iter().position(|c| &c.name == p).expect("known");
                if sel[j].contains(&nodes[i].name) {
                    mutual += 1;
                }
            }
        }
        assert!(
            mutual * 2 > pairs,
            "{mutual} of {pairs} selections are mutual"
        );
    }

    proptest! {
        #[test]
        fn bounded_deterministic_and_never_self(n in 0usize..200, max in 0usize..40, epoch in any::<u64>(), me in 0usize..200) {
            let nodes = cluster(n, 4);
            let me = format!("node-{me:04}");
            let a = select_peers(&me, Some("z1"), &nodes, max, epoch);
            let b = select_peers(&me, Some("z1"), &nodes, max, epoch);
            prop_assert_eq!(&a, &b);
            prop_assert!(a.len() <= max);
            prop_assert!(!a.contains(&me));
            let unique: BTreeSet<_> = a.iter().collect();
            prop_assert_eq!(unique.len(), a.len());
            let others = nodes.iter().filter(|c| c.name != me).count();
            prop_assert_eq!(a.len(), max.min(others));
        }
    }
}
