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
    /// The methods, combined. Today: `Majority`.
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
            PartitionMethod::Majority => None,
        })
    }

    /// With a witness: how long its vote takes to change hands when its
    /// holder goes (its etcd lease runs out, then the next round of the
    /// driver, a third of the TTL, takes it), plus a lease and the margin
    /// for the word to arrive; no more than the startup wait less the margin, so that the
    /// server that left, started again and cut off, cannot start groups
    /// (it waits `startup_wait_secs` to form) before the survivor counted
    /// it out and released. `None` without a witness.
    pub fn handover(&self, config: &ClusterConfig) -> Option<Duration> {
        let w = self.witness()?;
        let ttl = Duration::from_secs(w.ttl_secs.into());
        let wanted = ttl + ttl / 3 + self.lease(config) + self.margin(config);
        let cap = Duration::from_secs(config.heartbeat.startup_wait_secs.into())
            .saturating_sub(self.margin(config));
        Some(wanted.min(cap))
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
            "at least one method is needed (Majority, Etcd(...)); leave `partition` out for none",
        );
    }
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

/// Warnings (not errors) about partition safety, for `config check`.
pub fn warnings(config: &ClusterConfig) -> Vec<String> {
    if config.servers.len() < 2 {
        return Vec::new();
    }
    match &config.partition {
        None => vec![
            "partition: no network-partition resolution: if every path between the servers is cut while they stay up, both sides run the groups (add `partition: (methods: [Majority])`)".into(),
        ],
        Some(p) if config.servers.len() == 2 && p.witness().is_none() => vec![format!(
            "partition: with two servers a majority is the tie-breaker alone: when {} is down or cut off, the other server takes nothing over (add a witness: Etcd(endpoints: [...]))",
            p.tie_breaker(config).unwrap_or("the first server")
        )],
        Some(p) => {
            let mut w = Vec::new();
            if let (Some(h), Some(e)) = (p.handover(config), p.witness()) {
                let ttl = Duration::from_secs(e.ttl_secs.into());
                let wanted = ttl + ttl / 3 + p.lease(config) + p.margin(config);
                if h < wanted {
                    w.push(format!(
                        "partition: the witness's vote needs up to {} ms to change hands (ttl + ttl/3 + lease + margin), but a server that left counts only {} ms (heartbeat.startup_wait_secs less the margin): the survivor may lose its quorum meanwhile (raise startup_wait_secs)",
                        wanted.as_millis(),
                        h.as_millis()
                    ));
                }
            }
            w
        }
    }
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
/// comes: `support` holds, per peer, when its last support runs out.
/// `None`: not quorate at `now`.
pub fn lease_until(
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
    use crate::config::parse;

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
