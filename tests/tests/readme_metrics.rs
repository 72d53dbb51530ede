//! README's metric table against what agents really serve: every family on `/metrics`
//! has a row, every row is served, and each row's labels are the labels its samples
//! carry. Two agents on loopback cover every row: one probing 127.0.0.1 with the fake
//! NVML library and a served throughput test, one with `--kube` against an API server
//! that is not there (its publisher's families exist from the start).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use linkmeter_tests::agent::{AgentProcess, free_port, http_get, wait_for};
use linkmeter_tests::{bins, fake_nvml};

/// Families that appear only after a successful NodeTopology write.
const AFTER_A_WRITE: &[&str] = &[
    "linkmeter_publish_writes_total",
    "linkmeter_publish_bytes_total",
];

/// One row of the README's metric table.
#[derive(Debug)]
struct Row {
    /// Family names as documented (`_total` included for counters; may end in `*`).
    names: Vec<String>,
    labels: BTreeSet<String>,
}

/// The words between backticks in `cell`.
fn backticked(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The rows of the table whose header is `| metric | type | labels |`.
fn readme_rows(readme: &str) -> Vec<Row> {
    readme
        .lines()
        .skip_while(|l| !l.starts_with("| metric | type | labels |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            Row {
                names: backticked(cells[1])
                    .into_iter()
                    .filter(|n| n.starts_with("linkmeter_"))
                    .collect(),
                labels: backticked(cells.get(3).copied().unwrap_or(""))
                    .into_iter()
                    .collect(),
            }
        })
        .collect()
}

/// Families on a Prometheus text scrape (from `# TYPE`) with the label names their
/// samples carry (`le` and `quantile` are the format's own, not the family's).
fn served_families(text: &str, into: &mut BTreeMap<String, BTreeSet<String>>) {
    let mut types = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split_whitespace();
            if let (Some(name), Some(kind)) = (words.next(), words.next()) {
                types.insert(name.to_owned(), kind.to_owned());
                into.entry(documented_name(name, kind)).or_default();
            }
        }
    }
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let series = line.rsplit_once(' ').map_or(line, |(s, _)| s);
        let (metric, labels) = series.split_once('{').unwrap_or((series, ""));
        // The family is the longest TYPE name the sample name starts with.
        let Some((family, kind)) = types
            .iter()
            .filter(|(name, _)| metric.starts_with(name.as_str()))
            .max_by_key(|(name, _)| name.len())
        else {
            continue;
        };
        let names = labels
            .trim_end_matches('}')
            .split(',')
            .filter_map(|kv| kv.split_once('=').map(|(k, _)| k.trim().to_owned()))
            .filter(|k| k != "le" && k != "quantile");
        into.entry(documented_name(family, kind))
            .or_default()
            .extend(names);
    }
}

/// The name a reader types: counters with `_total`, as they are queried.
fn documented_name(family: &str, kind: &str) -> String {
    if kind == "counter" && !family.ends_with("_total") {
        format!("{family}_total")
    } else {
        family.to_owned()
    }
}

fn matches(documented: &str, served: &str) -> bool {
    match documented.strip_suffix('*') {
        Some(prefix) => served.starts_with(prefix),
        None => documented == served,
    }
}

fn spawn_agent(ip: &str, args: &[&str]) -> (AgentProcess, String) {
    let port = free_port().expect("port");
    let mut cmd = Command::new(bins::agent());
    cmd.args(["run", "--node-name", "readme", "--listen"])
        .arg(format!("{ip}:{port}"))
        .args(args)
        .env("LINKMETER_LOG_LEVEL", "warn");
    let agent = AgentProcess::spawn(cmd).expect("spawn agent");
    let url = format!("http://{ip}:{port}");
    let up = wait_for(Duration::from_secs(15), Duration::from_millis(100), || {
        http_get(None, &format!("{url}/healthz"), None).ok()
    });
    assert!(up.is_some(), "agent never answered:\n{}", agent.log());
    (agent, url)
}

#[test]
fn readme_metric_table_matches_what_agents_serve() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .expect("README.md");
    let rows = readme_rows(&readme);
    assert!(
        rows.len() >= 10,
        "metric table not found in README: {rows:?}"
    );

    // Agents 1 and 2 on two loopback addresses measure each other: ICMP, throughput
    // (1 tests 2, 2 serves), system, and on 1 the fake-NVML GPU collector.
    let tport = free_port().expect("port").to_string();
    let nvml = fake_nvml::library_dir().join(fake_nvml::LIBRARY_NAME);
    let nvml = nvml.to_str().expect("UTF-8 path");
    let common = [
        "--ping-interval",
        "500ms",
        "--ping-count",
        "2",
        "--ping-spacing",
        "50ms",
        "--ping-timeout",
        "200ms",
        "--throughput-port",
        &tport,
        "--system-interval",
        "1s",
        "--throughput-period",
        "4s",
        "--throughput-max-duration",
        "2s",
    ];
    let one = [
        &common[..],
        &[
            "--peer",
            "two=127.0.0.2",
            "--gpu-interval",
            "1s",
            "--nvml-library",
            nvml,
        ],
    ]
    .concat();
    let (agent, url) = spawn_agent("127.0.0.1", &one);
    let two = [
        &common[..],
        &["--peer", "one=127.0.0.1", "--no-gpu", "--no-throughput"],
    ]
    .concat();
    let (agent2, url2) = spawn_agent("127.0.0.2", &two);
    let mut served = BTreeMap::new();
    let text = wait_for(Duration::from_secs(30), Duration::from_millis(250), || {
        let t = http_get(None, &format!("{url}/metrics"), None).ok()?;
        (t.contains("linkmeter_gpu_")
            && t.contains("linkmeter_throughput_test_bytes_total")
            && t.contains("linkmeter_peer_throughput_bits_per_second")
            && t.contains("linkmeter_peer_rtt_seconds_count"))
        .then_some(t)
    })
    .unwrap_or_else(|| {
        panic!(
            "agent 1 never served every family:\n{}\n----\n{}",
            agent.log(),
            agent2.log()
        )
    });
    served_families(&text, &mut served);
    let text = http_get(None, &format!("{url2}/metrics"), None).expect("agent 2 metrics");
    served_families(&text, &mut served);

    // Agent 2: --kube against nothing; its publisher's and API health's families.
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}}]\n\
         users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n",
    )
    .expect("kubeconfig");
    let kubeconfig = kubeconfig.to_str().expect("UTF-8 path");
    let (kube_agent, kube_url) = spawn_agent(
        "127.0.0.1",
        &[
            "--kube",
            "--kubeconfig",
            kubeconfig,
            "--no-gpu",
            "--no-throughput",
            "--no-serve",
        ],
    );
    let text = wait_for(Duration::from_secs(15), Duration::from_millis(200), || {
        let t = http_get(None, &format!("{kube_url}/metrics"), None).ok()?;
        t.contains("linkmeter_kube_api_up").then_some(t)
    })
    .unwrap_or_else(|| {
        panic!(
            "agent 2 never served its kube families:\n{}",
            kube_agent.log()
        )
    });
    served_families(&text, &mut served);

    let mut problems = Vec::new();
    for (family, labels) in &served {
        let Some(row) = rows
            .iter()
            .find(|r| r.names.iter().any(|n| matches(n, family)))
        else {
            problems.push(format!("{family} is served but not in README's table"));
            continue;
        };
        let wildcard = row.names.iter().any(|n| n.ends_with('*'));
        // A wildcard row documents the labels its families share; others list them all.
        // Families without samples have no labels to compare.
        let ok = labels.is_empty()
            || if wildcard {
                row.labels.is_subset(labels)
            } else {
                &row.labels == labels
            };
        if !ok {
            problems.push(format!(
                "{family}: README says labels {:?}, /metrics has {labels:?}",
                row.labels
            ));
        }
    }
    for row in &rows {
        for name in &row.names {
            // Served only once an apply reached an API server: kube_agents reads them
            // by these names from agents publishing to a real one.
            if AFTER_A_WRITE.contains(&name.as_str()) {
                continue;
            }
            if !served.keys().any(|f| matches(name, f)) {
                problems.push(format!("README lists {name}, which no agent served"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "README metric table vs /metrics:\n{}",
        problems.join("\n")
    );
}

#[test]
fn table_parsing_reads_names_and_labels() {
    let md = "x\n| metric | type | labels |\n|---|---|---|\n\
              | `linkmeter_a_total`, `b`, `linkmeter_b` | counter | `role`, `result` |\n| `linkmeter_gpu_*` (info, with `--kube`) | gauge | |\n\nafter\n";
    let rows = readme_rows(md);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].names, vec!["linkmeter_a_total", "linkmeter_b"]);
    assert_eq!(rows[1].names, vec!["linkmeter_gpu_*"]);
    assert_eq!(
        rows[0].labels,
        BTreeSet::from(["role".to_owned(), "result".to_owned()])
    );
    assert!(rows[1].labels.is_empty());
    let mut served = BTreeMap::new();
    served_families(
        "# TYPE a counter\na_total{role=\"x\",result=\"ok\"} 1\n# TYPE h histogram\nh_bucket{le=\"1\",peer=\"p\"} 1\n",
        &mut served,
    );
    assert_eq!(
        served["a_total"],
        BTreeSet::from(["role".to_owned(), "result".to_owned()])
    );
    assert_eq!(served["h"], BTreeSet::from(["peer".to_owned()]));
}
