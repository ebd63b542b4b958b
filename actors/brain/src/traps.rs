//! SNMP traps for the message receive monitors of category `BMCNOTICE`
//! (see [`crate::monitor::message`]): which addresses a server listens on
//! (one socket per address and port, however many monitors share it), what
//! a received packet counts as, and which monitors a trap is for. The
//! sockets and the decoding of the packets are the shell's
//! (`monitor/message/trap.rs`); it hands each packet in as a [`TrapPacket`].

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::config::ClusterConfig;
use crate::monitor::message::{MessageConfig, BMC_CATEGORY};
use crate::monitor::MonitorKind;
use crate::state::TrapListenerStatus;

/// Largest datagram taken for a trap, bytes. A BMC's trap is a few hundred
/// bytes; anything larger is counted as oversized and dropped undecoded.
pub const MAX_TRAP_BYTES: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnmpVersion {
    V1,
    V2c,
}

impl SnmpVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            SnmpVersion::V1 => "v1",
            SnmpVersion::V2c => "v2c",
        }
    }
}

/// What the shell found in one datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrapPacket {
    /// An SNMPv1 Trap-PDU or an SNMPv2-Trap-PDU of v2c.
    Trap {
        version: SnmpVersion,
        community: Vec<u8>,
    },
    /// Well-formed SNMP that is not a v1 or v2c trap (a request, an
    /// inform, another version); the text says which.
    Other(String),
    /// Not decodable as SNMP: garbled or truncated; the text says why.
    Garbled(String),
    /// Longer than [`MAX_TRAP_BYTES`] (its length).
    Oversized(usize),
}

/// A message receive monitor that listens on an endpoint, as it applies on
/// this server.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscriber {
    pub monitor: String,
    pub config: MessageConfig,
}

/// The endpoints `local` listens on, each with its monitors: every
/// `BMCNOTICE` monitor that runs there and whose keyword (its per-server
/// value, if any) is `IP[:port]`.
pub fn plan(config: &ClusterConfig, local: &str) -> BTreeMap<SocketAddr, Vec<Subscriber>> {
    let mut out: BTreeMap<SocketAddr, Vec<Subscriber>> = BTreeMap::new();
    for m in &config.monitors {
        let m = m.for_server(local);
        if !m.runs_on(local) {
            continue;
        }
        let MonitorKind::Message(c) = &m.kind else {
            continue;
        };
        if let Some(Ok(endpoint)) = c.trap_endpoint() {
            out.entry(endpoint).or_default().push(Subscriber {
                monitor: m.name.clone(),
                config: c.clone(),
            });
        }
    }
    out
}

/// What to do with one packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// An error notice for these monitors.
    Deliver(Vec<String>),
    /// Counted and dropped.
    Dropped,
}

struct Listener {
    subscribers: Vec<Subscriber>,
    status: TrapListenerStatus,
}

/// Every trap endpoint of this server with its monitors and counters.
#[derive(Default)]
pub struct TrapListeners {
    listeners: BTreeMap<SocketAddr, Listener>,
}

impl TrapListeners {
    /// Takes a new plan (see [`plan`]). Returns the endpoints to open and
    /// those to close; an endpoint that stays keeps its socket and counters.
    pub fn reconfigure(
        &mut self,
        plan: BTreeMap<SocketAddr, Vec<Subscriber>>,
    ) -> (Vec<SocketAddr>, Vec<SocketAddr>) {
        let close: Vec<SocketAddr> = self
            .listeners
            .keys()
            .filter(|e| !plan.contains_key(e))
            .copied()
            .collect();
        for e in &close {
            self.listeners.remove(e);
        }
        let mut open = Vec::new();
        for (endpoint, subscribers) in plan {
            let monitors = subscribers.iter().map(|s| s.monitor.clone()).collect();
            match self.listeners.get_mut(&endpoint) {
                Some(l) => {
                    l.subscribers = subscribers;
                    l.status.monitors = monitors;
                }
                None => {
                    open.push(endpoint);
                    self.listeners.insert(
                        endpoint,
                        Listener {
                            subscribers,
                            status: TrapListenerStatus {
                                address: endpoint.to_string(),
                                monitors,
                                ..Default::default()
                            },
                        },
                    );
                }
            }
        }
        (open, close)
    }

    /// The endpoints in force.
    pub fn endpoints(&self) -> Vec<SocketAddr> {
        self.listeners.keys().copied().collect()
    }

    /// The shell bound the endpoint (`Ok`) or could not (`Err`: why; it
    /// tries again).
    pub fn bound(&mut self, endpoint: SocketAddr, result: Result<(), String>) {
        if let Some(l) = self.listeners.get_mut(&endpoint) {
            l.status.listening = result.is_ok();
            l.status.error = result.err();
        }
    }

    /// One datagram that arrived on `endpoint`: counts it and says which
    /// monitors get an error notice. A trap counts when at least one of
    /// the endpoint's monitors accepts its community; else it is a wrong
    /// community. Nothing else ever reaches a monitor.
    pub fn judge(&mut self, endpoint: SocketAddr, packet: &TrapPacket) -> Verdict {
        let Some(l) = self.listeners.get_mut(&endpoint) else {
            return Verdict::Dropped;
        };
        let s = &mut l.status;
        match packet {
            TrapPacket::Oversized(_) => s.oversized += 1,
            TrapPacket::Garbled(_) => s.garbled += 1,
            TrapPacket::Other(_) => s.other += 1,
            TrapPacket::Trap { community, .. } => {
                let monitors: Vec<String> = l
                    .subscribers
                    .iter()
                    .filter(|sub| sub.config.community_accepts(community))
                    .map(|sub| sub.monitor.clone())
                    .collect();
                if monitors.is_empty() {
                    s.wrong_community += 1;
                } else {
                    s.traps += 1;
                    return Verdict::Deliver(monitors);
                }
            }
        }
        Verdict::Dropped
    }

    /// The status entries, one per endpoint, in address order.
    pub fn status(&self) -> Vec<TrapListenerStatus> {
        self.listeners.values().map(|l| l.status.clone()).collect()
    }
}

/// Risks in the trap settings that do not stop the configuration from
/// loading (`config check` and the daemon's start show them): a
/// `BMCNOTICE` keyword that is not `IP[:port]` or is empty (no trap reaches
/// that monitor), two servers sharing a keyword (each server needs its
/// own), one server's monitors on different ports.
pub fn warnings(config: &ClusterConfig) -> Vec<String> {
    let mut out = Vec::new();
    // endpoint -> servers that listen there; server -> ports it uses.
    let mut owners: BTreeMap<SocketAddr, Vec<String>> = BTreeMap::new();
    for server in &config.servers {
        let local = &server.name;
        let mut ports: BTreeMap<u16, Vec<String>> = BTreeMap::new();
        for m in &config.monitors {
            let m = m.for_server(local);
            let MonitorKind::Message(c) = &m.kind else {
                continue;
            };
            if c.category != BMC_CATEGORY || !m.runs_on(local) {
                continue;
            }
            match c.trap_endpoint() {
                None => out.push(format!(
                    "monitors[{}] on {local}: a {BMC_CATEGORY} monitor without a keyword receives no SNMP trap (set IP[:port], per server)",
                    m.name
                )),
                Some(Err(e)) => out.push(format!(
                    "monitors[{}] on {local}: {e}: it receives no SNMP trap",
                    m.name
                )),
                Some(Ok(endpoint)) => {
                    let o = owners.entry(endpoint).or_default();
                    if !o.contains(local) {
                        o.push(local.clone());
                    }
                    ports
                        .entry(endpoint.port())
                        .or_default()
                        .push(m.name.clone());
                }
            }
        }
        if ports.len() > 1 {
            let list: Vec<String> = ports
                .iter()
                .map(|(p, ms)| format!("{p} ({})", ms.join(", ")))
                .collect();
            out.push(format!(
                "{local}: its {BMC_CATEGORY} monitors use several trap ports ({}); a server receives its BMC's traps on one",
                list.join(", ")
            ));
        }
    }
    for (endpoint, servers) in owners {
        if servers.len() > 1 {
            out.push(format!(
                "{BMC_CATEGORY} keyword {endpoint} is used by {}: each server needs its own (per_server)",
                servers.join(", ")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    fn config(monitors: &str) -> ClusterConfig {
        let text = format!(
            "Cluster(name: \"t\", servers: [Server(name: \"s1\", interconnects: [\"198.51.100.1\"]), \
             Server(name: \"s2\", interconnects: [\"198.51.100.2\"])], \
             heartbeat: (key_file: \"k\"), \
             groups: [Group(name: \"failover1\", resources: [])], monitors: [{monitors}])"
        );
        parse("t.ron", &text).unwrap_or_else(|p| panic!("{p:?}"))
    }

    /// Seed 003's sample: a common keyword (server1's) and one per server.
    const SAMPLE: &str = r#"Monitor(name: "mrw1",
            kind: Message(category: "BMCNOTICE", keyword: "198.51.100.1"),
            recovery: (target: Group("failover1"), reactivation_threshold: 0),
            per_server: {
                "s1": (kind: Message(category: "BMCNOTICE", keyword: "198.51.100.1")),
                "s2": (kind: Message(category: "BMCNOTICE", keyword: "198.51.100.2")),
            })"#;

    fn ep(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn each_server_listens_on_its_own_keyword() {
        let c = config(SAMPLE);
        let s1 = plan(&c, "s1");
        let s2 = plan(&c, "s2");
        assert_eq!(s1.keys().collect::<Vec<_>>(), [&ep("198.51.100.1:162")]);
        assert_eq!(s2.keys().collect::<Vec<_>>(), [&ep("198.51.100.2:162")]);
        assert!(warnings(&c).is_empty(), "{:?}", warnings(&c));
    }

    #[test]
    fn one_endpoint_for_every_monitor_that_names_it() {
        let c = config(
            r#"Monitor(name: "a", kind: Message(category: "BMCNOTICE", keyword: "198.51.100.1"), recovery: (target: Group("failover1")), servers: ["s1"]),
               Monitor(name: "b", kind: Message(category: "BMCNOTICE", keyword: "198.51.100.1:162"), recovery: (target: Group("failover1")), servers: ["s1"]),
               Monitor(name: "c", kind: Message(category: "BMCNOTICE", keyword: "198.51.100.1:1162"), recovery: (target: Group("failover1")), servers: ["s1"]),
               Monitor(name: "d", kind: Message(category: "NIC", keyword: "198.51.100.1"), recovery: (target: Group("failover1")), servers: ["s1"]),
               Monitor(name: "e", kind: Message(category: "BMCNOTICE", keyword: "bmc"), recovery: (target: Group("failover1")), servers: ["s2"])"#,
        );
        let p = plan(&c, "s1");
        assert_eq!(p.len(), 2);
        let names: Vec<&str> = p[&ep("198.51.100.1:162")]
            .iter()
            .map(|s| s.monitor.as_str())
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert!(plan(&c, "s2").is_empty());
        let w = warnings(&c);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("several trap ports"), "{w:?}");
        assert!(
            w[1].contains("monitors[e] on s2") && w[1].contains("not IP[:port]"),
            "{w:?}"
        );
    }

    #[test]
    fn a_keyword_shared_by_two_servers_is_a_warning() {
        let c = config(
            r#"Monitor(name: "a", kind: Message(category: "BMCNOTICE", keyword: "198.51.100.1"), recovery: (target: Group("failover1")))"#,
        );
        let w = warnings(&c);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("used by s1, s2"), "{w:?}");
    }

    #[test]
    fn packets_are_counted_and_only_traps_with_the_community_deliver() {
        let c = config(
            r#"Monitor(name: "a", kind: Message(category: "BMCNOTICE", keyword: "198.51.100.1", community: "c1"), recovery: (target: Group("failover1"))),
               Monitor(name: "b", kind: Message(category: "BMCNOTICE", keyword: "198.51.100.1"), recovery: (target: Group("failover1")), servers: ["s2"])"#,
        );
        let mut l = TrapListeners::default();
        let (open, close) = l.reconfigure(plan(&c, "s1"));
        assert_eq!(open, [ep("198.51.100.1:162")]);
        assert!(close.is_empty());
        let e = ep("198.51.100.1:162");
        let trap = |community: &[u8]| TrapPacket::Trap {
            version: SnmpVersion::V2c,
            community: community.to_vec(),
        };
        assert_eq!(l.judge(e, &trap(b"c1")), Verdict::Deliver(vec!["a".into()]));
        assert_eq!(l.judge(e, &trap(b"public")), Verdict::Dropped);
        assert_eq!(
            l.judge(e, &TrapPacket::Garbled("x".into())),
            Verdict::Dropped
        );
        assert_eq!(l.judge(e, &TrapPacket::Oversized(70000)), Verdict::Dropped);
        assert_eq!(
            l.judge(e, &TrapPacket::Other("get".into())),
            Verdict::Dropped
        );
        // Another endpoint: nothing, not even a count.
        assert_eq!(
            l.judge(ep("198.51.100.2:162"), &trap(b"c1")),
            Verdict::Dropped
        );
        l.bound(e, Err("address not available".into()));
        let s = &l.status()[0];
        assert_eq!(
            (s.traps, s.wrong_community, s.garbled, s.oversized, s.other),
            (1, 1, 1, 1, 1)
        );
        assert_eq!(s.monitors, ["a"]);
        assert!(!s.listening);
        l.bound(e, Ok(()));
        assert!(l.status()[0].listening && l.status()[0].error.is_none());

        // The same endpoint again keeps its counters; a new one opens, the
        // old one closes.
        assert_eq!(l.reconfigure(plan(&c, "s1")), (vec![], vec![]));
        assert_eq!(l.status()[0].traps, 1);
        let (open, close) = l.reconfigure(plan(&config(SAMPLE), "s2"));
        assert_eq!((open, close), (vec![ep("198.51.100.2:162")], vec![e]));
        assert_eq!(l.status()[0].traps, 0);
    }
}
