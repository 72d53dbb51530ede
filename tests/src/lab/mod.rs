//! Network lab: small multi-host networks built from network namespaces.
//!
//! Each [`Node`] is a namespace with one *node address* (a /32 on `lo`,
//! from 10.77.0.0/16). Each [`Lab::link`] joins two nodes with its own
//! point-to-point /30 (from 10.78.0.0/16) and routes each node's traffic to
//! the other's node address over that link, so one address per node reaches
//! every peer through the link built for that pair. Links are veth pairs
//! (optionally shaped with tbf) or delay links through the `lab-relay`
//! binary, since this kernel has no netem.
//!
//! Dropping a [`Lab`] stops its relays and child processes and deletes its
//! namespaces, also during a panic. A killed test run cannot drop anything,
//! so [`Lab::new`] first sweeps namespaces whose owning process is dead
//! ([`cleanup_stale`]); its relays exit by themselves when their stdin
//! closes.
//!
//! ```no_run
//! # use linkmeter_tests::lab::{DelaySpec, Lab, VethSpec};
//! # use std::time::Duration;
//! # fn main() -> anyhow::Result<()> {
//! let Some(lab) = Lab::new_or_skip()? else { return Ok(()) };
//! let (a, b, c) = (lab.add_node("a")?, lab.add_node("b")?, lab.add_node("c")?);
//! lab.link(&a, &b, VethSpec::shaped(40))?;
//! lab.link(&a, &c, DelaySpec::new(Duration::from_millis(7)).drop_every(5))?;
//! let stats = lab.ping(&a, c.addr(), 20, Duration::from_millis(50))?;
//! # Ok(()) }
//! ```
//!
//! A lab can also reach a service of the test host itself: [`Lab::host_address`]
//! puts an address (e.g. 10.76.255.1/32) on a device of its own in the root namespace
//! for the service to bind, and [`Lab::link_to_host`] gives a node a veth to the root
//! namespace (a /30 from 10.79.0.0/16) with a route to that address. Nothing else
//! in the root namespace changes, and the devices go with the lab.
//!
//! The lab needs root. Without it, [`Lab::new`] fails with a clear message;
//! set `LINKMETER_SKIP_LAB=1` to make [`Lab::new_or_skip`] skip instead.

mod cleanup;
mod link;
mod measure;
mod netns;
mod process;
mod reference;
mod relay;

use std::ffi::OsStr;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, Once};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};

pub use cleanup::cleanup_stale;
pub use link::{DelaySpec, DropDirection, LinkInfo, LinkSpec, VethSpec};
pub use measure::{PingStats, parse_ping};
pub use netns::list as list_netns;
pub use process::ChildGuard;
pub use reference::{
    BusyCore, RELAY_PICKUP_US, RELAY_SLACK, THROUGHPUT_TOLERANCE, interleave, median,
    rtt_tolerance_us,
};
pub use relay::{RELAY_ENV, relay_binary};

use link::End;
use process::SharedChild;
use relay::Relay;

/// Set to `1` to skip lab tests on machines without root.
pub const SKIP_ENV: &str = "LINKMETER_SKIP_LAB";

/// The message for a missing privilege, shared by every place that can
/// discover it.
pub(crate) const NEED_ROOT: &str = "the network lab needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN \
     to create network namespaces); run the tests as root, or set LINKMETER_SKIP_LAB=1 to skip them";

/// Largest number of nodes per lab (the node address's last two octets).
const MAX_NODES: usize = 250 * 256;

/// A node of a lab: one network namespace with one node address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    name: String,
    netns: String,
    addr: Ipv4Addr,
}

impl Node {
    /// The name given to [`Lab::add_node`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The node's network namespace (`lm<pid>x<n>-<name>`).
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// The node address: the one address peers reach this node at.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }
}

/// Everything a lab must undo, guarded by one lock so a lab can be shared
/// between threads.
#[derive(Debug, Default)]
struct State {
    nodes: Vec<Node>,
    links: Vec<LinkInfo>,
    relays: Vec<Relay>,
    children: Vec<SharedChild>,
    /// Devices in the root namespace (of [`Lab::host_address`]).
    host_devices: Vec<String>,
    /// Number of [`Lab::link_to_host`] links made.
    host_links: usize,
}

/// A set of namespaces, links and processes that is torn down on drop.
#[derive(Debug)]
pub struct Lab {
    id: String,
    state: Mutex<State>,
}

/// True when `LINKMETER_SKIP_LAB=1`.
pub fn skip_requested() -> bool {
    std::env::var(SKIP_ENV).is_ok_and(|v| v == "1")
}

impl Lab {
    /// Creates an empty lab. Fails when not running as root.
    pub fn new() -> Result<Self> {
        // SAFETY: geteuid() takes no arguments and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            bail!(NEED_ROOT);
        }
        static SWEEP: Once = Once::new();
        SWEEP.call_once(|| {
            if let Err(e) = cleanup_stale() {
                eprintln!("lab: sweeping stale namespaces: {e:#}");
            }
        });
        Ok(Self {
            id: cleanup::new_lab_id(),
            state: Mutex::new(State::default()),
        })
    }

    /// Like [`Lab::new`], but returns `None` (after printing a skip line)
    /// when `LINKMETER_SKIP_LAB=1`. Tests use it as
    /// `let Some(lab) = Lab::new_or_skip()? else { return Ok(()) };`.
    pub fn new_or_skip() -> Result<Option<Self>> {
        if skip_requested() {
            println!("SKIPPED: network lab test ({SKIP_ENV}=1)");
            return Ok(None);
        }
        Self::new().map(Some)
    }

    /// The lab's id, unique on this machine while the process lives.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Locks the state even after a panic elsewhere: teardown must run.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a node: a namespace with `lo` up and the next node address on
    /// it. `name` is 1–16 characters of `[A-Za-z0-9_-]`, unique in the lab.
    pub fn add_node(&self, name: &str) -> Result<Node> {
        ensure!(
            (1..=16).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
            "node name {name:?}: want 1-16 characters of [A-Za-z0-9_-]"
        );
        let mut state = self.state();
        ensure!(
            state.nodes.iter().all(|n| n.name != name),
            "node {name:?} already exists"
        );
        ensure!(state.nodes.len() < MAX_NODES, "too many nodes");
        let index = u32::try_from(state.nodes.len()).context("too many nodes")?;
        let node = Node {
            name: name.to_owned(),
            netns: cleanup::netns_name(&self.id, name),
            addr: Ipv4Addr::new(10, 77, (index / 250) as u8, (index % 250) as u8 + 1),
        };
        netns::add(&node.netns)?;
        // Recorded before configuring, so Drop deletes it if that fails.
        state.nodes.push(node.clone());
        let addr = format!("{}/32", node.addr);
        netns::ip_in(&node.netns, &["link", "set", "dev", "lo", "up"])?;
        netns::ip_in(&node.netns, &["addr", "add", &addr, "dev", "lo"])?;
        Ok(node)
    }

    /// Joins `a` and `b` with a link built as `spec` says, and routes each
    /// node's traffic to the other's node address over it.
    pub fn link(&self, a: &Node, b: &Node, spec: impl Into<LinkSpec>) -> Result<LinkInfo> {
        let spec = spec.into();
        let mut state = self.state();
        for node in [a, b] {
            ensure!(
                state.nodes.contains(node),
                "node {:?} is not part of lab {}",
                node.name,
                self.id
            );
        }
        ensure!(a != b, "cannot link node {:?} to itself", a.name);
        let index = state.links.len();
        let (a_addr, b_addr) = link::link_addrs(index)?;
        let kind = match spec {
            LinkSpec::Veth(_) => 'v',
            LinkSpec::Delay(_) => 'd',
        };
        let (a_if, b_if) = (
            link::if_name(kind, index, &b.name),
            link::if_name(kind, index, &a.name),
        );
        let end_a = End {
            node: a,
            ifname: &a_if,
            addr: a_addr,
        };
        let end_b = End {
            node: b,
            ifname: &b_if,
            addr: b_addr,
        };
        let relay_pid = match &spec {
            LinkSpec::Veth(veth) => {
                link::build_veth(&end_a, &end_b, veth)?;
                None
            }
            LinkSpec::Delay(delay) => {
                let relay = Relay::start(delay)?;
                let pid = relay.pid();
                // Kept before configuring so Drop stops it if that fails.
                state.relays.push(relay);
                let relay = state.relays.last().context("relay just pushed")?;
                link::build_delay(&end_a, &end_b, relay)?;
                Some(pid)
            }
        };
        let info = LinkInfo {
            a: a.name.clone(),
            b: b.name.clone(),
            a_if,
            b_if,
            a_addr,
            b_addr,
            relay_pid,
        };
        state.links.push(info.clone());
        Ok(info)
    }

    /// A command that runs `program` inside `node`'s namespace
    /// (`ip netns exec <netns> <program>`); add arguments as usual.
    pub fn command(&self, node: &Node, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &node.netns]).arg(program);
        cmd
    }

    /// Spawns `cmd` (usually from [`Lab::command`]) and returns a guard
    /// that stops it on drop. The lab stops it too when dropped first.
    /// stdin defaults to null so children never read the test's terminal.
    pub fn spawn(&self, cmd: &mut Command) -> Result<ChildGuard> {
        let child = cmd
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("spawning {cmd:?}"))?;
        let pid = child.id();
        let shared: SharedChild = Arc::new(Mutex::new(Some(child)));
        let mut state = self.state();
        // Forget children whose guards already stopped them.
        state.children.retain(|c| process::lock(c).is_some());
        state.children.push(Arc::clone(&shared));
        Ok(ChildGuard::new(shared, pid))
    }

    /// Changes the one-way delay of a delay link built by [`Lab::link`], in both
    /// directions, for packets sent from now on. Fails for a veth link.
    pub fn set_delay(&self, link: &LinkInfo, one_way: Duration) -> Result<()> {
        let pid = link
            .relay_pid
            .with_context(|| format!("link {}-{} is not a delay link", link.a, link.b))?;
        let mut state = self.state();
        let relay = state
            .relays
            .iter_mut()
            .find(|r| r.pid() == pid)
            .with_context(|| format!("no relay {pid} in lab {}", self.id))?;
        relay.set_delay(one_way)
    }

    /// Puts `addr`/32 on a device of its own in the root namespace, so a service
    /// of the test host can bind it and lab nodes can reach it through
    /// [`Lab::link_to_host`]. The device is deleted with the lab.
    ///
    /// The device is one end of a veth pair whose other end also stays in the root
    /// namespace: this kernel has no `dummy` module, and a veth is up (with carrier)
    /// once both ends are.
    pub fn host_address(&self, addr: Ipv4Addr) -> Result<()> {
        let mut state = self.state();
        let index = state.host_devices.len();
        let dev = cleanup::host_device_name(&self.id, "h", index)?;
        let peer = cleanup::host_device_name(&self.id, "p", index)?;
        netns::run(
            "ip",
            &["link", "add", &dev, "type", "veth", "peer", "name", &peer],
        )?;
        // Deleting one end deletes the pair.
        state.host_devices.push(dev.clone());
        let cidr = format!("{addr}/32");
        netns::run("ip", &["addr", "add", &cidr, "dev", &dev])?;
        // A local address on a down device gets no local route.
        for d in [&peer, &dev] {
            netns::run("ip", &["link", "set", "dev", d, "up"])?;
        }
        Ok(())
    }

    /// Joins `node` to the root namespace with a veth pair (a /30 from
    /// 10.79.0.0/16) and routes `host_addr`/32 from `node` over it. Traffic leaves
    /// with the veth's address as source, which the root namespace reaches over the
    /// pair's own subnet, so the root namespace needs no route to lab addresses.
    /// Deleting the node's namespace (when the lab is dropped) deletes the pair.
    ///
    /// Returns the node's address on the pair, where the root namespace reaches a
    /// service the node binds on every address.
    pub fn link_to_host(&self, node: &Node, host_addr: Ipv4Addr) -> Result<Ipv4Addr> {
        let mut state = self.state();
        ensure!(
            state.nodes.contains(node),
            "node {:?} is not part of lab {}",
            node.name,
            self.id
        );
        let index = state.host_links;
        let (host_end, node_end) = link::host_link_addrs(index)?;
        let root_if = cleanup::host_device_name(&self.id, "v", index)?;
        let node_if = format!("host{index}");
        netns::run(
            "ip",
            &[
                "link",
                "add",
                &root_if,
                "type",
                "veth",
                "peer",
                "name",
                &node_if,
                "netns",
                &node.netns,
            ],
        )?;
        state.host_links += 1;
        let host_cidr = format!("{host_end}/30");
        netns::run("ip", &["addr", "add", &host_cidr, "dev", &root_if])?;
        netns::run("ip", &["link", "set", "dev", &root_if, "up"])?;
        let node_cidr = format!("{node_end}/30");
        netns::ip_in(&node.netns, &["addr", "add", &node_cidr, "dev", &node_if])?;
        netns::ip_in(&node.netns, &["link", "set", "dev", &node_if, "up"])?;
        let dst = format!("{host_addr}/32");
        let via = host_end.to_string();
        netns::ip_in(
            &node.netns,
            &["route", "add", &dst, "via", &via, "dev", &node_if],
        )?;
        Ok(node_end)
    }

    /// Names of the lab's namespaces.
    pub fn netns_names(&self) -> Vec<String> {
        self.state().nodes.iter().map(|n| n.netns.clone()).collect()
    }

    /// Pids of the lab's running relays.
    pub fn relay_pids(&self) -> Vec<u32> {
        self.state().relays.iter().map(Relay::pid).collect()
    }

    /// The links built so far.
    pub fn links(&self) -> Vec<LinkInfo> {
        self.state().links.clone()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        // Relays first: deleting a namespace under a running relay would
        // only make it exit with an error.
        for mut relay in state.relays.drain(..) {
            match relay.stop() {
                Ok(log) if std::env::var_os("LINKMETER_LAB_DEBUG").is_some() => {
                    eprintln!("lab {}: {}", self.id, log.trim());
                }
                Ok(_) => {}
                Err(e) => eprintln!("lab {}: stopping relay: {e:#}", self.id),
            }
        }
        for child in state.children.drain(..) {
            if let Some(Err(e)) = process::stop_shared(&child) {
                eprintln!("lab {}: stopping child: {e:#}", self.id);
            }
        }
        for node in state.nodes.drain(..) {
            if let Err(e) = netns::delete(&node.netns) {
                eprintln!("lab {}: {e:#}", self.id);
            }
        }
        for dev in state.host_devices.drain(..) {
            if let Err(e) = netns::run("ip", &["link", "delete", &dev]) {
                eprintln!("lab {}: {e:#}", self.id);
            }
        }
    }
}
