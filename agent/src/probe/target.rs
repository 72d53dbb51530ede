//! Peers as named by the user, and their resolution to one address each.

use std::net::{IpAddr, SocketAddr};

/// A peer as given on the command line or discovered from the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerTarget {
    /// Name reported in the link entry (node name, or the text the user typed).
    pub name: String,
    /// Host name or literal address to probe.
    pub host: String,
}

impl PeerTarget {
    /// A peer whose name is the host text itself (as in `snapshot --peer`).
    pub fn from_host(host: &str) -> Self {
        PeerTarget {
            name: host.to_owned(),
            host: host.to_owned(),
        }
    }
}

/// A peer after name resolution: an address, or why there is none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedPeer {
    /// The peer as it was named.
    pub target: PeerTarget,
    /// The address to probe, or the resolution error.
    pub addr: Result<IpAddr, String>,
}

/// Resolves every peer concurrently; a peer that does not resolve gets an error of its
/// own and never holds up the others. Literal addresses (with or without `[]`) skip DNS.
/// The result keeps the order of `targets`.
pub async fn resolve_peers(targets: &[PeerTarget]) -> Vec<ResolvedPeer> {
    let mut set = tokio::task::JoinSet::new();
    for (i, t) in targets.iter().enumerate() {
        let t = t.clone();
        set.spawn(async move {
            let addr = resolve_one(&t.host).await;
            (i, ResolvedPeer { target: t, addr })
        });
    }
    let mut out: Vec<Option<ResolvedPeer>> = vec![None; targets.len()];
    while let Some(joined) = set.join_next().await {
        if let Ok((i, r)) = joined {
            out[i] = Some(r);
        }
    }
    // A lookup task can only be missing if it panicked; report that peer as failed
    // rather than dropping it silently.
    out.into_iter()
        .zip(targets)
        .map(|(r, t)| {
            r.unwrap_or_else(|| ResolvedPeer {
                target: t.clone(),
                addr: Err("name resolution task failed".to_owned()),
            })
        })
        .collect()
}

async fn resolve_one(host: &str) -> Result<IpAddr, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(ip);
    }
    if host.is_empty() || host.len() > 253 {
        return Err(format!("invalid host name {host:?}"));
    }
    let lookup = tokio::net::lookup_host((host, 0));
    match tokio::time::timeout(std::time::Duration::from_secs(5), lookup).await {
        Err(_) => Err(format!("cannot resolve {host}: lookup timed out")),
        Ok(Err(e)) => Err(format!("cannot resolve {host}: {e}")),
        Ok(Ok(addrs)) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            // Prefer IPv4 when a name has both: node InternalIPs are mostly v4 and v4
            // ICMP is the more widely permitted.
            addrs
                .iter()
                .find(|a| a.is_ipv4())
                .or(addrs.first())
                .map(|a| a.ip())
                .ok_or_else(|| format!("cannot resolve {host}: no addresses"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn literals_resolve_without_dns_and_bad_names_fail_alone() {
        let peers = [
            PeerTarget::from_host("127.0.0.1"),
            PeerTarget::from_host("[::1]"),
            PeerTarget::from_host("no-such-host.invalid"),
            PeerTarget::from_host(""),
        ];
        let r = resolve_peers(&peers).await;
        assert_eq!(r.len(), 4);
        assert_eq!(r[0].addr, Ok("127.0.0.1".parse().expect("literal")));
        assert_eq!(r[1].addr, Ok("::1".parse().expect("literal")));
        assert!(
            r[2].addr
                .as_ref()
                .is_err_and(|e| e.contains("no-such-host.invalid"))
        );
        assert!(r[3].addr.is_err());
    }
}
