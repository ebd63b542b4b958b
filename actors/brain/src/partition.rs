//! Network-partition resolution: which side of a cut keeps the groups, and
//! the self-fencing lease that makes the other side let go in time.
//!
//! Quorum by majority: a server counts a peer only while that peer's
//! heartbeats, sent within the last `lease_ms`, say that the peer hears it
//! too ("support"). A side that counts strictly more than half of the
//! servers, or exactly half with the tie-breaker, is quorate. Counting only
//! mutual hearing keeps a one-way cut from making both sides quorate.
//!
//! The guarantees, with T the heartbeat timeout, L the lease and M the
//! margin (docs/cluster.md names the inequalities):
//! - a server that is not quorate starts nothing and stops what it holds;
//! - a silent server X is taken over only when this server is quorate and
//!   every member of its quorum has said it does not hear X either, since
//!   an instant D, and then only from D + L + M on. Any quorum of X needs
//!   one of those members (two majorities meet), whose support of X ran out
//!   by D + L: X's lease ended, and X's watchdog (the guardian here) has
//!   released it by D + L + M/2 if X could not do so itself (frozen);
//! - a server that left in order, whose guardian reported its death, or
//!   that an operator confirmed down, holds nothing: no wait.
//!
//! Gates (ping and HTTP targets, as the product's PING NP and HTTP NP): a
//! server is quorate only while each of its gates has a fresh "reached"
//! verdict (a probe sent at t that got its answer counts until t + L), or
//! while it hears every other server both ways (the cluster is whole:
//! there is no partition to decide, and a target's outage alone must not
//! stop the groups). Gates are combined with the vote rule (Majority,
//! Etcd) when one is configured; with gates only, no votes are counted.
//! A gate holds the silent-server guarantee above only for a server that
//! lost its targets with the cut: a cut of the interconnect alone, with
//! both sides still reaching their targets, is not decided by gates.
//!
//! Pure: the brain calls these with the instants it is given.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::ClusterConfig;
use crate::problems::Problems;

/// Default of `margin_ms`.
pub const DEFAULT_MARGIN_MS: u32 = 1000;

/// `partition`: how a server that stops hearing others decides whether it
/// may keep (or take) groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "Partition")]
pub struct PartitionConfig {
    /// The methods, combined: votes (`Majority`, `Etcd`) and gates
    /// (`Ping`, `Http`).
    #[serde(default = "default_methods")]
    pub methods: Vec<PartitionMethod>,
    /// On an even split, the side with this server is quorate (default:
    /// the first server).
    #[serde(default)]
    pub tie_breaker: Option<String>,
    /// A quorum verdict lasts this long after the heartbeats it rests on
    /// were sent (default: the heartbeat timeout).
    #[serde(default)]
    pub lease_ms: Option<u32>,
    /// Time a server that lost its lease has to be released of everything
    /// (its own stop, else its watchdog): survivors wait lease + margin
    /// (default: 1000 ms, or half the heartbeat timeout when that is more).
    #[serde(default)]
    pub margin_ms: Option<u32>,
    /// What the side that lost its quorum does, besides releasing its
    /// groups (which it always does).
    #[serde(default)]
    pub action: NpAction,
}

fn default_methods() -> Vec<PartitionMethod> {
    vec![PartitionMethod::Majority]
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PartitionMethod {
    /// Strictly more than half of the servers, heard both ways; an even
    /// split goes to the side with the tie-breaker.
    Majority,
    /// A witness in etcd: one more vote, held by one server at a time
    /// (a key bound to that server's etcd lease). With two servers, the
    /// side that holds it keeps or takes the groups.
    Etcd(EtcdWitness),
    /// PING NP: a server that gets no echo reply from any of these
    /// addresses within the lease is not quorate (one target answering is
    /// enough). A gate: it adds no vote.
    Ping(PingTargets),
    /// HTTP NP: a server whose `HEAD` requests to this URL get no 2xx or
    /// 3xx reply within the lease is not quorate. A gate: it adds no vote.
    Http(HttpTarget),
}

/// `Ping(...)`: the addresses and the probe's timing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "Ping")]
pub struct PingTargets {
    /// IP addresses (v4 or v6 literals, no names: a partition must not
    /// depend on a name server), 1-16.
    pub targets: Vec<String>,
    /// A round (one echo request to every target) starts this often
    /// (default: a third of the lease).
    #[serde(default)]
    pub interval_ms: Option<u32>,
    /// A round's replies count only within this long (default: a third of
    /// the lease).
    #[serde(default)]
    pub timeout_ms: Option<u32>,
}

/// `Http(...)`: the witness web server and the probe's timing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "Http")]
pub struct HttpTarget {
    /// `http://HOST[:PORT][/PATH]`: a `HEAD` request goes there.
    pub url: String,
    /// As in `Ping(...)`.
    #[serde(default)]
    pub interval_ms: Option<u32>,
    #[serde(default)]
    pub timeout_ms: Option<u32>,
}

/// Most addresses of one `Ping(...)`.
pub const MAX_PING_TARGETS: usize = 16;

/// A gate's probe timing, defaults applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeTiming {
    pub interval: Duration,
    pub timeout: Duration,
}

/// A gate of `partition.methods`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate<'a> {
    Ping(&'a PingTargets),
    Http(&'a HttpTarget),
}

impl Gate<'_> {
    /// How alerts and status name it: `ping 198.51.100.254, 203.0.113.254`,
    /// `HTTP http://198.51.100.254/`.
    pub fn describe(&self) -> String {
        match self {
            Gate::Ping(p) => format!("ping {}", p.targets.join(", ")),
            Gate::Http(h) => format!("HTTP {}", h.url),
        }
    }

    /// The method's name in status (`Ping`, `Http`).
    pub fn kind(&self) -> &'static str {
        match self {
            Gate::Ping(_) => "Ping",
            Gate::Http(_) => "Http",
        }
    }

    fn timing_ms(&self) -> (Option<u32>, Option<u32>) {
        match self {
            Gate::Ping(p) => (p.interval_ms, p.timeout_ms),
            Gate::Http(h) => (h.interval_ms, h.timeout_ms),
        }
    }
}

/// `http://HOST[:PORT][/PATH]` taken apart: host (IPv6 in brackets), port
/// (default 80), path (default `/`).
pub fn parse_http_url(url: &str) -> Result<(String, u16, String), String> {
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(if url.starts_with("https://") {
            format!("\"{url}\": https is not supported for an HTTP target: use http://")
        } else {
            format!("\"{url}\" is not http://HOST[:PORT][/PATH]")
        });
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.contains('@') {
        return Err(format!("\"{url}\": no user or password in the URL"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let Some(end) = v6.find(']') else {
            return Err(format!("\"{url}\": unclosed [ in the host"));
        };
        let host = &authority[..end + 2];
        (host, authority[end + 2..].strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() || host == "[]" {
        return Err(format!("\"{url}\": the host is missing"));
    }
    let port = match port {
        None => 80,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p != 0 => p,
            _ => return Err(format!("\"{url}\": port \"{p}\" is out of range (1-65535)")),
        },
    };
    if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "\"{url}\": the path has spaces or control characters"
        ));
    }
    Ok((host.to_string(), port, path.to_string()))
}

/// `Etcd(...)`: the witness's endpoints and lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "Etcd")]
pub struct EtcdWitness {
    /// `http://HOST:PORT` or `https://HOST:PORT`, one or more.
    pub endpoints: Vec<String>,
    /// Key prefix (default `/understudy/<cluster name>`); the vote is
    /// `<prefix>/vote`.
    #[serde(default)]
    pub prefix: Option<String>,
    /// TTL of the etcd lease the vote is bound to (2-60 s, default 2): a
    /// server that cannot renew it loses the vote this long after its
    /// last renewal, and another may take it.
    #[serde(default = "default_ttl")]
    pub ttl_secs: u32,
    /// TLS: the CA that signed the endpoints' certificates, and this
    /// server's client certificate and key (all three, or none).
    #[serde(default)]
    pub ca_file: Option<String>,
    #[serde(default)]
    pub cert_file: Option<String>,
    #[serde(default)]
    pub key_file: Option<String>,
}

fn default_ttl() -> u32 {
    2
}

/// The name under which the witness's vote appears in quorum lists.
pub const WITNESS: &str = "witness";

/// The action at NP occurrence: what a server that lost its quorum does
/// once its groups are released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum NpAction {
    /// Nothing more: it waits to be quorate again, then takes part again.
    None,
    /// Stop the cluster service here.
    StopClusterService,
    /// Stop the cluster service, then `os_actions.shutdown` (the default).
    #[default]
    StopClusterServiceAndShutdownOs,
    /// Stop the cluster service, then `os_actions.reboot`.
    StopClusterServiceAndRebootOs,
    /// `os_actions.panic` at once (a sysrq crash by default).
    Panic,
}

impl NpAction {
    pub fn describe(self) -> &'static str {
        match self {
            NpAction::None => "none (wait for the quorum to return)",
            NpAction::StopClusterService => "stop the cluster service",
            NpAction::StopClusterServiceAndShutdownOs => {
                "stop the cluster service and shut down the OS"
            }
            NpAction::StopClusterServiceAndRebootOs => "stop the cluster service and reboot the OS",
            NpAction::Panic => "panic the OS",
        }
    }
}

impl PartitionConfig {
    pub fn lease(&self, config: &ClusterConfig) -> Duration {
        Duration::from_millis(self.lease_ms.unwrap_or(config.heartbeat.timeout_ms).into())
    }

    pub fn margin(&self, config: &ClusterConfig) -> Duration {
        Duration::from_millis(self.margin_ms(config).into())
    }

    /// `margin_ms`, or its default for this heartbeat.
    pub fn margin_ms(&self, config: &ClusterConfig) -> u32 {
        self.margin_ms
            .unwrap_or_else(|| DEFAULT_MARGIN_MS.max(config.heartbeat.timeout_ms / 2))
    }

    /// The etcd witness, if one is configured.
    pub fn witness(&self) -> Option<&EtcdWitness> {
        self.methods.iter().find_map(|m| match m {
            PartitionMethod::Etcd(w) => Some(w),
            _ => None,
        })
    }

    /// With a witness: how long its vote takes to change hands when its
    /// holder goes (its etcd lease runs out, then the next round of the
    /// driver, a third of the TTL, takes it), plus a lease and the margin
    /// for the word to arrive: how long the action at NP occurrence waits
    /// for the vote. `None` without a witness.
    pub fn handover(&self, config: &ClusterConfig) -> Option<Duration> {
        let w = self.witness()?;
        let ttl = Duration::from_secs(w.ttl_secs.into());
        Some(ttl + ttl / 3 + self.lease(config) + self.margin(config))
    }

    /// Whether the methods count votes (`Majority` or `Etcd`): a server is
    /// then quorate only with enough of them. Gates alone count none.
    pub fn counts_votes(&self) -> bool {
        self.methods
            .iter()
            .any(|m| matches!(m, PartitionMethod::Majority | PartitionMethod::Etcd(_)))
    }

    /// The gates (`Ping`, `Http`), with their index in `methods`.
    pub fn gates(&self) -> impl Iterator<Item = (usize, Gate<'_>)> {
        self.methods
            .iter()
            .enumerate()
            .filter_map(|(i, m)| match m {
                PartitionMethod::Ping(p) => Some((i, Gate::Ping(p))),
                PartitionMethod::Http(h) => Some((i, Gate::Http(h))),
                _ => None,
            })
    }

    /// The gate of `methods[i]`, if it is one.
    pub fn gate(&self, i: usize) -> Option<Gate<'_>> {
        self.gates().find(|(j, _)| *j == i).map(|(_, g)| g)
    }

    /// A gate's probe timing: a third of the lease each by default (two
    /// rounds may go unanswered before a healthy server's verdict lapses).
    pub fn timing(&self, config: &ClusterConfig, gate: Gate<'_>) -> ProbeTiming {
        let third = (self.lease(config).as_millis() as u32 / 3).max(1);
        let (interval, timeout) = gate.timing_ms();
        ProbeTiming {
            interval: Duration::from_millis(interval.unwrap_or(third).into()),
            timeout: Duration::from_millis(timeout.unwrap_or(third).into()),
        }
    }

    /// Voters: the servers, and the witness if any.
    pub fn voters(&self, config: &ClusterConfig) -> usize {
        config.servers.len() + usize::from(self.witness().is_some())
    }

    pub fn tie_breaker<'a>(&'a self, config: &'a ClusterConfig) -> Option<&'a str> {
        self.tie_breaker
            .as_deref()
            .or_else(|| config.servers.first().map(|s| s.name.as_str()))
    }
}

/// Checks `partition`; warnings for a cluster that has none (or one that
/// cannot survive the loss of its tie-breaker).
pub fn validate(config: &ClusterConfig, problems: &mut Problems) {
    let Some(p) = &config.partition else {
        return;
    };
    let hb = &config.heartbeat;
    if p.methods.is_empty() {
        problems.push(
            "partition.methods",
            "at least one method is needed (Majority, Etcd(...), Ping(...), Http(...)); leave `partition` out for none",
        );
    }
    validate_gates(config, p, problems);
    let witnesses = p
        .methods
        .iter()
        .filter(|m| matches!(m, PartitionMethod::Etcd(_)))
        .count();
    if witnesses > 1 {
        problems.push(
            "partition.methods",
            "at most one witness (Etcd) per cluster",
        );
    }
    for (i, m) in p.methods.iter().enumerate() {
        let PartitionMethod::Etcd(w) = m else {
            continue;
        };
        let path = format!("partition.methods[{i}]");
        if w.endpoints.is_empty() {
            problems.push(
                format!("{path}.endpoints"),
                "at least one endpoint is needed",
            );
        }
        for (j, e) in w.endpoints.iter().enumerate() {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                problems.push(
                    format!("{path}.endpoints[{j}]"),
                    format!("\"{e}\" is not http://HOST:PORT or https://HOST:PORT"),
                );
            }
        }
        problems.range(&format!("{path}.ttl_secs"), w.ttl_secs, 2, 60);
        let tls = [&w.ca_file, &w.cert_file, &w.key_file]
            .iter()
            .filter(|f| f.is_some())
            .count();
        if tls != 0 && tls != 3 {
            problems.push(
                format!("{path}.ca_file"),
                "TLS needs all three of ca_file, cert_file and key_file",
            );
        }
        if tls == 3 {
            for (j, e) in w.endpoints.iter().enumerate() {
                if e.starts_with("http://") {
                    problems.push(
                        format!("{path}.endpoints[{j}]"),
                        format!("\"{e}\" is plain http while TLS files are given: use https://"),
                    );
                }
            }
        }
        if let Some(prefix) = &w.prefix {
            if !prefix.starts_with('/') {
                problems.push(format!("{path}.prefix"), "a key prefix starts with /");
            }
        }
    }
    if let Some(t) = &p.tie_breaker {
        if config.server(t).is_none() {
            problems.push(
                "partition.tie_breaker",
                format!("\"{t}\" is not a server of the cluster"),
            );
        }
    }
    if let Some(lease) = p.lease_ms {
        if lease < hb.interval_ms.saturating_mul(2) || lease > 3_600_000 {
            problems.push(
                "partition.lease_ms",
                format!(
                    "{lease} ms is out of range: at least twice the heartbeat interval ({} ms), at most 3600000",
                    hb.interval_ms.saturating_mul(2)
                ),
            );
        }
    }
    // The brain looks at its lease at least every timeout/4, and a stall
    // of twice that is how it notices it did not run: the margin must hold
    // both, and leave the watchdog time to release.
    let floor = (hb.timeout_ms / 2).max(200);
    let margin = p.margin_ms(config);
    if margin < floor || margin > 3_600_000 {
        problems.push(
            "partition.margin_ms",
            format!(
                "{margin} ms is out of range: at least half the heartbeat timeout and 200 ms ({floor} ms here), at most 3600000"
            ),
        );
    }
}

/// Checks the gates (`Ping`, `Http`): addresses, URL, timing against the
/// lease.
fn validate_gates(config: &ClusterConfig, p: &PartitionConfig, problems: &mut Problems) {
    let lease_ms = p.lease(config).as_millis() as u64;
    for (i, gate) in p.gates() {
        let path = format!("partition.methods[{i}]");
        match gate {
            Gate::Ping(ping) => {
                if ping.targets.is_empty() {
                    problems.push(format!("{path}.targets"), "at least one address is needed");
                }
                if ping.targets.len() > MAX_PING_TARGETS {
                    problems.push(
                        format!("{path}.targets"),
                        format!(
                            "{} addresses: at most {MAX_PING_TARGETS}",
                            ping.targets.len()
                        ),
                    );
                }
                for (j, t) in ping.targets.iter().enumerate() {
                    let bad = match crate::host::parse_ip(t) {
                        None => Some("is not an IP address (names are not resolved: a partition must not depend on a name server)"),
                        Some(ip) if ip.is_unspecified() || ip.is_multicast() => {
                            Some("is not a unicast address")
                        }
                        Some(std::net::IpAddr::V4(v4)) if v4.is_broadcast() => {
                            Some("is not a unicast address")
                        }
                        Some(_) => None,
                    };
                    if let Some(why) = bad {
                        problems.push(format!("{path}.targets[{j}]"), format!("\"{t}\" {why}"));
                    }
                }
            }
            Gate::Http(h) => {
                if let Err(e) = parse_http_url(&h.url) {
                    problems.push(format!("{path}.url"), e);
                }
            }
        }
        let (interval, timeout) = gate.timing_ms();
        if let Some(v) = interval {
            problems.range(&format!("{path}.interval_ms"), v, 20, 600_000);
        }
        if let Some(v) = timeout {
            problems.range(&format!("{path}.timeout_ms"), v, 20, 600_000);
        }
        let t = p.timing(config, gate);
        let (iv, to) = (t.interval.as_millis() as u64, t.timeout.as_millis() as u64);
        if to > iv {
            problems.push(
                format!("{path}.timeout_ms"),
                format!("{to} ms is longer than the interval ({iv} ms): a round must end before the next one starts"),
            );
        }
        if iv + to > lease_ms {
            problems.push(
                format!("{path}.interval_ms"),
                format!(
                    "interval {iv} ms + timeout {to} ms is more than the lease ({lease_ms} ms): a healthy server's verdict would lapse between two rounds"
                ),
            );
        }
    }
}

/// Warnings (not errors) about partition safety, for `config check`.
pub fn warnings(config: &ClusterConfig) -> Vec<String> {
    if config.servers.len() < 2 {
        return Vec::new();
    }
    let Some(p) = &config.partition else {
        return vec![
            "partition: no network-partition resolution: if every path between the servers is cut while they stay up, both sides run the groups (add `partition: (methods: [Majority])`)".into(),
        ];
    };
    let mut out = Vec::new();
    if !p.counts_votes() {
        out.push(
            "partition: Ping and Http targets alone cannot decide a cut of the interconnect while every side still reaches its targets: both sides then keep or take the groups (add Majority with three servers or more, or an Etcd witness)".into(),
        );
    } else if config.servers.len() == 2 && p.witness().is_none() {
        out.push(format!(
            "partition: with two servers a majority is the tie-breaker alone: when {} is down or cut off, the other server takes nothing over (add a witness: Etcd(endpoints: [...]))",
            p.tie_breaker(config).unwrap_or("the first server")
        ));
    }
    out
}

/// Whether `members` (this server included) make a quorum of `config`.
pub fn quorate<'a>(
    config: &ClusterConfig,
    p: &PartitionConfig,
    members: impl Iterator<Item = &'a str>,
) -> bool {
    let n = p.voters(config);
    let tie = p.tie_breaker(config);
    let mut count = 0;
    let mut with_tie = false;
    for m in members {
        count += 1;
        with_tie |= Some(m) == tie;
    }
    2 * count > n || (2 * count == n && with_tie)
}

/// The instant at which this server stops being quorate if no more support
/// and no more verdicts come: `support` holds, per peer (and the witness),
/// when its last support runs out; `gates`, per gate (its index in
/// `methods`), when its last "reached" verdict runs out. `None`: not
/// quorate at `now`.
///
/// With votes (Majority, Etcd), the vote rule must hold; with gates, each
/// gate must be fresh, unless every other server supports this one (the
/// cluster is whole). The earliest of those ends.
pub fn lease_until(
    config: &ClusterConfig,
    p: &PartitionConfig,
    local: &str,
    support: &BTreeMap<String, Duration>,
    gates: &BTreeMap<usize, Duration>,
    now: Duration,
) -> Option<Duration> {
    let votes = if p.counts_votes() {
        votes_until(config, p, local, support, now)?
    } else {
        Duration::MAX
    };
    if p.gates().next().is_none() {
        return Some(votes);
    }
    let fresh = p
        .gates()
        .map(|(i, _)| gates.get(&i).copied().filter(|u| *u > now))
        .try_fold(Duration::MAX, |acc, u| u.map(|u| acc.min(u)));
    let whole = config
        .servers
        .iter()
        .filter(|s| s.name != local)
        .map(|s| support.get(&s.name).copied().filter(|u| *u > now))
        .try_fold(Duration::MAX, |acc, u| u.map(|u| acc.min(u)));
    let gated = match (fresh, whole) {
        (Some(a), Some(b)) => a.max(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => return None,
    };
    Some(votes.min(gated))
}

/// The vote rule alone: until when the members' votes make a quorum.
pub fn votes_until(
    config: &ClusterConfig,
    p: &PartitionConfig,
    local: &str,
    support: &BTreeMap<String, Duration>,
    now: Duration,
) -> Option<Duration> {
    let valid: Vec<(&str, Duration)> = support
        .iter()
        .filter(|(_, until)| **until > now)
        .map(|(s, until)| (s.as_str(), *until))
        .collect();
    // The latest instant t such that the peers still supporting at t make
    // a quorum with this server.
    let mut candidates: Vec<Duration> = valid.iter().map(|v| v.1).collect();
    candidates.sort();
    candidates.dedup();
    if quorate(config, p, std::iter::once(local)) {
        return Some(Duration::MAX);
    }
    candidates.into_iter().rev().find(|&t| {
        let members = std::iter::once(local).chain(
            valid
                .iter()
                .filter(move |(_, until)| *until >= t)
                .map(|(s, _)| *s),
        );
        quorate(config, p, members)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    fn cluster(servers: usize, partition: &str) -> ClusterConfig {
        let list: String = (1..=servers)
            .map(|i| format!("Server(name: \"s{i}\", interconnects: [\"198.51.100.{i}\"]),"))
            .collect();
        let text = format!(
            "Cluster(name: \"t\", servers: [{list}], \
             heartbeat: (interval_ms: 100, timeout_ms: 300, key_file: \"k\"), partition: {partition})"
        );
        parse("t.ron", &text).expect("valid test configuration")
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn map<K: Ord + Clone>(items: &[(K, u64)]) -> BTreeMap<K, Duration> {
        items.iter().map(|(k, v)| (k.clone(), ms(*v))).collect()
    }

    fn until(
        c: &ClusterConfig,
        support: &[(&str, u64)],
        gates: &[(usize, u64)],
        now: u64,
    ) -> Option<Duration> {
        let support = support
            .iter()
            .map(|(s, v)| (s.to_string(), ms(*v)))
            .collect();
        lease_until(
            c,
            c.partition.as_ref().unwrap(),
            "s1",
            &support,
            &map(gates),
            ms(now),
        )
    }

    const PING: &str = r#"Ping(targets: ["198.51.100.254"])"#;

    #[test]
    fn an_etcd_witness_alone_still_counts_a_majority_with_its_vote() {
        let c = cluster(
            2,
            r#"(methods: [Etcd(endpoints: ["http://198.51.100.100:2379"])])"#,
        );
        assert_eq!(until(&c, &[], &[], 100), None, "one vote of three");
        assert_eq!(until(&c, &[(WITNESS, 900)], &[], 100), Some(ms(900)));
        assert_eq!(until(&c, &[("s2", 700)], &[], 100), Some(ms(700)));
    }

    #[test]
    fn gates_alone_count_no_votes_and_hold_while_fresh() {
        let c = cluster(2, &format!("(methods: [{PING}])"));
        assert!(!c.partition.as_ref().unwrap().counts_votes());
        // Alone, its target reached: quorate until that verdict ends.
        assert_eq!(until(&c, &[], &[(0, 400)], 100), Some(ms(400)));
        // No fresh verdict, and the peer not heard: not quorate.
        assert_eq!(until(&c, &[], &[], 100), None);
        assert_eq!(until(&c, &[], &[(0, 400)], 400), None, "lapsed at 400");
        // The cluster whole (every other server hears it): the target's
        // outage alone decides nothing.
        assert_eq!(until(&c, &[("s2", 700)], &[], 100), Some(ms(700)));
        assert_eq!(until(&c, &[("s2", 700)], &[(0, 900)], 100), Some(ms(900)));
    }

    #[test]
    fn gates_and_votes_must_both_hold() {
        let c = cluster(
            3,
            &format!("(methods: [Majority, {PING}, Http(url: \"http://203.0.113.254/\")])"),
        );
        // A majority (s1, s2) but one gate lapsed, and s3 not heard.
        assert_eq!(until(&c, &[("s2", 700)], &[(1, 900)], 100), None);
        // Both gates fresh: the earliest end of all.
        assert_eq!(
            until(&c, &[("s2", 700)], &[(1, 900), (2, 500)], 100),
            Some(ms(500))
        );
        // Gates fresh, no majority: not quorate.
        assert_eq!(until(&c, &[], &[(1, 900), (2, 900)], 100), None);
        // The whole cluster heard: gates lapsed or not.
        assert_eq!(
            until(&c, &[("s2", 700), ("s3", 600)], &[], 100),
            Some(ms(600))
        );
        // The tie-breaker of two is quorate alone for ever by the votes;
        // its gate bounds it.
        let c = cluster(2, &format!("(methods: [Majority, {PING}])"));
        assert_eq!(until(&c, &[], &[(1, 400)], 100), Some(ms(400)));
        assert_eq!(until(&c, &[], &[], 100), None);
    }

    #[test]
    fn gate_timing_defaults_to_a_third_of_the_lease() {
        let c = cluster(2, &format!("(methods: [{PING}], lease_ms: 900)"));
        let p = c.partition.as_ref().unwrap();
        let (_, g) = p.gates().next().unwrap();
        assert_eq!(
            p.timing(&c, g),
            ProbeTiming {
                interval: ms(300),
                timeout: ms(300)
            }
        );
    }

    #[test]
    fn http_urls_are_taken_apart() {
        assert_eq!(
            parse_http_url("http://203.0.113.254"),
            Ok(("203.0.113.254".into(), 80, "/".into()))
        );
        assert_eq!(
            parse_http_url("http://[2001:db8::1]:8080/np?x=1"),
            Ok(("[2001:db8::1]".into(), 8080, "/np?x=1".into()))
        );
        assert_eq!(
            parse_http_url("http://witness.example:81/"),
            Ok(("witness.example".into(), 81, "/".into()))
        );
        for bad in [
            "https://w/",
            "w:80",
            "http://",
            "http://w:0/",
            "http://w:99999/",
            "http://u@w/",
            "http://w/a b",
        ] {
            assert!(parse_http_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn gates_alone_warn_that_an_interconnect_cut_is_not_decided() {
        let w = warnings(&cluster(2, &format!("(methods: [{PING}])")));
        assert_eq!(w.len(), 1);
        assert!(
            w[0].contains("cannot decide a cut of the interconnect"),
            "{w:?}"
        );
        let w = warnings(&cluster(3, &format!("(methods: [Majority, {PING}])")));
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn gate_settings_are_checked_field_by_field() {
        assert!(check(&format!(
            "(methods: [{PING}, Http(url: \"http://203.0.113.254:8080/np\")])"
        ))
        .is_empty());
        let p = check(
            r#"(methods: [Majority, Ping(targets: ["198.51.100.254", "witness", "224.0.0.1"], interval_ms: 10), Ping(targets: [])])"#,
        );
        for field in [
            "partition.methods[1].targets[1]",
            "partition.methods[1].targets[2]",
            "partition.methods[1].interval_ms",
            "partition.methods[2].targets",
        ] {
            assert!(p.iter().any(|p| p.contains(field)), "{field}: {p:?}");
        }
        assert!(!p.iter().any(|p| p.contains("targets[0]")), "{p:?}");
        let p = check(r#"(methods: [Http(url: "https://203.0.113.254/")])"#);
        assert!(
            p.iter()
                .any(|p| p.contains("partition.methods[0].url") && p.contains("use http://")),
            "{p:?}"
        );
        // Lease 300 ms: 200 + 150 leaves a healthy server without a verdict.
        let p = check(
            r#"(methods: [Ping(targets: ["198.51.100.254"], interval_ms: 200, timeout_ms: 150)])"#,
        );
        assert!(
            p.iter()
                .any(|p| p.contains("partition.methods[0].interval_ms") && p.contains("lease")),
            "{p:?}"
        );
        let p = check(
            r#"(methods: [Ping(targets: ["198.51.100.254"], interval_ms: 100, timeout_ms: 150)])"#,
        );
        assert!(
            p.iter()
                .any(|p| p.contains("partition.methods[0].timeout_ms")),
            "{p:?}"
        );
    }

    fn check(partition: &str) -> Vec<String> {
        let text = format!(
            "Cluster(name: \"t\", servers: [Server(name: \"a\", interconnects: [\"198.51.100.1\"]), \
             Server(name: \"b\", interconnects: [\"198.51.100.2\"])], \
             heartbeat: (interval_ms: 100, timeout_ms: 300, key_file: \"k\"), partition: {partition})"
        );
        match parse("t.ron", &text) {
            Ok(_) => Vec::new(),
            Err(problems) => problems.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn witness_settings_are_checked_field_by_field() {
        assert!(
            check(r#"(methods: [Majority, Etcd(endpoints: ["http://198.51.100.100:2379"])])"#)
                .is_empty()
        );
        let p = check(r#"(methods: [Etcd(endpoints: ["198.51.100.100:2379"], ttl_secs: 1)])"#);
        assert!(
            p.iter()
                .any(|p| p.contains("partition.methods[0].endpoints[0]")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|p| p.contains("partition.methods[0].ttl_secs")),
            "{p:?}"
        );
        let p = check(r#"(methods: [Etcd(endpoints: ["https://w:2379"], ca_file: "ca.pem")])"#);
        assert!(p.iter().any(|p| p.contains("all three")), "{p:?}");
        let p = check(
            r#"(methods: [Etcd(endpoints: ["http://w:2379"], ca_file: "ca", cert_file: "c", key_file: "k")])"#,
        );
        assert!(p.iter().any(|p| p.contains("use https://")), "{p:?}");
        let p = check(r#"(methods: [Majority], tie_breaker: "z", lease_ms: 100, margin_ms: 10)"#);
        for field in [
            "partition.tie_breaker",
            "partition.lease_ms",
            "partition.margin_ms",
        ] {
            assert!(p.iter().any(|p| p.contains(field)), "{field}: {p:?}");
        }
    }
}
