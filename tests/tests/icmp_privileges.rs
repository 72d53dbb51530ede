//! The three ways ICMP can go on a node, each for real in a fresh lab namespace (where
//! `net.ipv4.ping_group_range` starts as "1 0", i.e. unprivileged ICMP is off):
//! raw socket as root, unprivileged ping socket once the sysctl allows the group, and
//! neither (an unprivileged user without the sysctl) with one error naming both fixes.

use std::process::Output;

use linkmeter_aggregator::api::{CONDITION_ICMP_AVAILABLE, Condition, NodeTopologyStatus};
use linkmeter_tests::bins;
use linkmeter_tests::lab::{Lab, Node, VethSpec};

/// Runs snapshot in `node`, optionally as user/group 65534 with no capabilities.
fn snapshot_in(lab: &Lab, node: &Node, peer: &str, unprivileged: bool) -> Output {
    let agent = bins::agent();
    let mut cmd = if unprivileged {
        let mut c = lab.command(node, "setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ])
        .arg(&agent);
        c
    } else {
        lab.command(node, &agent)
    };
    cmd.args([
        "snapshot",
        "--json",
        "--no-gpu",
        "--no-system",
        "--count",
        "3",
        "--interval",
        "10ms",
    ])
    .args(["--peer", peer])
    .env("LINKMETER_LOG_LEVEL", "warn");
    cmd.output().expect("run snapshot")
}

fn icmp_condition(out: &Output) -> (Condition, NodeTopologyStatus) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st: NodeTopologyStatus = serde_json::from_slice(&out.stdout).expect("status JSON");
    let c = st
        .conditions
        .iter()
        .find(|c| c.type_ == CONDITION_ICMP_AVAILABLE)
        .cloned()
        .expect("IcmpAvailable condition");
    (c, st)
}

fn sysctl(lab: &Lab, node: &Node, value: &str) {
    let ok = lab
        .command(node, "sysctl")
        .args(["-q", "-w", &format!("net.ipv4.ping_group_range={value}")])
        .status()
        .expect("sysctl")
        .success();
    assert!(ok, "sysctl ping_group_range={value}");
}

#[test]
fn raw_unprivileged_and_denied_icmp() {
    let Some(lab) = Lab::new_or_skip().expect("lab") else {
        return;
    };
    let a = lab.add_node("a").expect("node a");
    let b = lab.add_node("b").expect("node b");
    lab.link(&a, &b, VethSpec::plain()).expect("link");
    let peer = b.addr().to_string();
    sysctl(&lab, &a, "1 0");

    // Root: unprivileged sockets are off, so the raw fallback is used.
    let (c, st) = icmp_condition(&snapshot_in(&lab, &a, &peer, false));
    assert_eq!(c.status, "True", "{c:?}");
    assert!(
        c.message
            .as_deref()
            .unwrap_or("")
            .contains("IPv4: raw socket"),
        "{c:?}"
    );
    assert!(st.links[0].rtt_p50_us.is_some(), "{st:?}");

    // Nobody, no capabilities, sysctl off: neither works, and the error says both fixes.
    let (c, st) = icmp_condition(&snapshot_in(&lab, &a, &peer, true));
    assert_eq!(c.status, "False", "{c:?}");
    assert_eq!(c.reason.as_deref(), Some("SocketDenied"));
    let msg = c.message.unwrap_or_default();
    assert!(
        msg.contains("ping_group_range") && msg.contains("CAP_NET_RAW"),
        "{msg}"
    );
    let link = &st.links[0];
    assert_eq!(link.rtt_p50_us, None);
    assert_eq!(link.loss_ppm, 1_000_000);
    assert!(
        link.error.as_deref().unwrap_or("").contains("CAP_NET_RAW"),
        "{link:?}"
    );

    // Nobody, sysctl covering its group: the unprivileged ping socket is used.
    sysctl(&lab, &a, "0 2147483647");
    let (c, st) = icmp_condition(&snapshot_in(&lab, &a, &peer, true));
    assert_eq!(c.status, "True", "{c:?}");
    assert!(
        c.message
            .as_deref()
            .unwrap_or("")
            .contains("IPv4: unprivileged socket"),
        "{c:?}"
    );
    assert_eq!(st.links[0].loss_ppm, 0, "{st:?}");
}
