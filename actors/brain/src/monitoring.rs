//! Settings common to every monitor resource (interval, timeout, retries,
//! timing, recovery) and their per-server overrides. The kind-specific
//! settings live with each kind in `crate::monitor`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::monitor::MonitorKind;

pub const DEFAULT_INTERVAL: u32 = 60;
pub const DEFAULT_TIMEOUT: u32 = 120;
pub const DEFAULT_RETRY: u32 = 1;
pub const DEFAULT_DELAY_WARNING: u32 = 80;
pub const DEFAULT_REACTIVATION_THRESHOLD: u32 = 3;
pub const DEFAULT_FAILOVER_THRESHOLD: u32 = 1;
pub const DEFAULT_SCRIPT_TIMEOUT: u32 = 30;
/// Range of `interval_ms` and `timeout_ms`: sub-second checking, down to
/// 100 ms, up to the seconds' limit.
pub const MIN_MS: u32 = 100;
pub const MAX_MS: u32 = 999_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename = "Monitor")]
pub struct MonitorConfig {
    pub name: String,
    pub kind: MonitorKind,
    /// Seconds between the starts of two checks (1-999).
    #[serde(default = "default_interval")]
    pub interval: u32,
    /// Seconds a check may take before it counts as failed (1-999).
    #[serde(default = "default_timeout")]
    pub timeout: u32,
    /// Milliseconds between the starts of two checks (100-999000), for
    /// sub-second checking: when set, it replaces `interval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<u32>,
    /// Milliseconds a check may take (100-999000): when set, it replaces
    /// `timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u32>,
    /// Failed checks tolerated in a row before the monitor turns Error (0-999).
    #[serde(default = "default_retry")]
    pub retry: u32,
    /// Seconds to wait before the first check (0-9999).
    #[serde(default)]
    pub first_wait: u32,
    #[serde(default)]
    pub timing: Timing,
    /// The resource whose activity gates an `Active` monitor (and the default
    /// recovery target).
    #[serde(default)]
    pub target: Option<String>,
    /// Servers that run this monitor. Absent: every server.
    #[serde(default)]
    pub servers: Option<Vec<String>>,
    /// A timeout turns the monitor Error at once, without retries.
    #[serde(default)]
    pub no_retry_on_timeout: bool,
    /// A timeout turns the monitor Error but recovers nothing.
    #[serde(default)]
    pub no_recovery_on_timeout: bool,
    /// Warn when a check takes longer than this share of the timeout
    /// (percent, 0-100; 0: never).
    #[serde(default = "default_delay_warning")]
    pub delay_warning: u32,
    #[serde(default)]
    pub recovery: MonitorRecovery,
    /// Settings that differ on one server, keyed by server name.
    #[serde(default)]
    pub per_server: BTreeMap<String, MonitorOverride>,
}

fn default_interval() -> u32 {
    DEFAULT_INTERVAL
}
fn default_timeout() -> u32 {
    DEFAULT_TIMEOUT
}
fn default_retry() -> u32 {
    DEFAULT_RETRY
}
fn default_delay_warning() -> u32 {
    DEFAULT_DELAY_WARNING
}

/// When a monitor checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Timing {
    /// From the start of the cluster service.
    #[default]
    Always,
    /// Only while the target resource is active.
    Active,
}

/// Any common setting (and the kind's settings, as a whole) for one server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename = "Override")]
pub struct MonitorOverride {
    #[serde(default)]
    pub kind: Option<MonitorKind>,
    #[serde(default)]
    pub interval: Option<u32>,
    #[serde(default)]
    pub timeout: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u32>,
    #[serde(default)]
    pub retry: Option<u32>,
    #[serde(default)]
    pub first_wait: Option<u32>,
    #[serde(default)]
    pub no_retry_on_timeout: Option<bool>,
    #[serde(default)]
    pub no_recovery_on_timeout: Option<bool>,
    #[serde(default)]
    pub delay_warning: Option<u32>,
    #[serde(default)]
    pub recovery: Option<MonitorRecovery>,
}

/// What to recover when the monitor turns Error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecoveryTarget {
    Resource(String),
    Group(String),
    /// The whole server: only the final action applies.
    LocalServer,
}

/// The last step of the recovery ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum MonitorFinalAction {
    #[default]
    NoOperation,
    /// Stop the target resource (and the resources depending on it).
    StopResource,
    /// Stop the target's group.
    StopGroup,
    StopClusterService,
    StopClusterServiceAndShutdownOs,
    StopClusterServiceAndRebootOs,
}

impl MonitorFinalAction {
    pub fn describe(self) -> &'static str {
        match self {
            MonitorFinalAction::NoOperation => "no operation",
            MonitorFinalAction::StopResource => "stop the resource",
            MonitorFinalAction::StopGroup => "stop the group",
            MonitorFinalAction::StopClusterService => "stop the cluster service",
            MonitorFinalAction::StopClusterServiceAndShutdownOs => {
                "stop the cluster service and shut down the OS"
            }
            MonitorFinalAction::StopClusterServiceAndRebootOs => {
                "stop the cluster service and reboot the OS"
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "Recovery")]
pub struct MonitorRecovery {
    /// Absent: the monitor's `target` resource.
    #[serde(default)]
    pub target: Option<RecoveryTarget>,
    /// Reactivations of the target before failing over (0-99).
    #[serde(default = "default_reactivation")]
    pub reactivation_threshold: u32,
    /// Failovers of the target's group before the final action (0-99).
    #[serde(default = "default_failover")]
    pub failover_threshold: u32,
    #[serde(default)]
    pub final_action: MonitorFinalAction,
    /// A script run before some of the steps.
    #[serde(default)]
    pub script: Option<RecoveryScript>,
}

fn default_reactivation() -> u32 {
    DEFAULT_REACTIVATION_THRESHOLD
}
fn default_failover() -> u32 {
    DEFAULT_FAILOVER_THRESHOLD
}

impl Default for MonitorRecovery {
    fn default() -> Self {
        MonitorRecovery {
            target: None,
            reactivation_threshold: DEFAULT_REACTIVATION_THRESHOLD,
            failover_threshold: DEFAULT_FAILOVER_THRESHOLD,
            final_action: MonitorFinalAction::NoOperation,
            script: None,
        }
    }
}

/// The script run before recovery steps, with `CLP_MONITORNAME`,
/// `CLP_ACTION`, `CLP_RESTARTCOUNT` and `CLP_FAILOVERCOUNT`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "RecoveryScript")]
pub struct RecoveryScript {
    pub path: String,
    /// Seconds (1-9999).
    #[serde(default = "default_script_timeout")]
    pub timeout: u32,
    #[serde(default)]
    pub before_reactivation: bool,
    #[serde(default)]
    pub before_failover: bool,
    #[serde(default)]
    pub before_final_action: bool,
}

fn default_script_timeout() -> u32 {
    DEFAULT_SCRIPT_TIMEOUT
}

/// A monitor's time as people read it: "5 s", or "250 ms" for what is not
/// whole seconds (`config check`, rm 71).
pub fn seconds_or_ms(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

impl MonitorConfig {
    /// Time between the starts of two checks: `interval_ms`, else
    /// `interval` seconds.
    pub fn interval_duration(&self) -> Duration {
        match self.interval_ms {
            Some(ms) => Duration::from_millis(ms.into()),
            None => Duration::from_secs(self.interval.into()),
        }
    }

    /// Time a check may take: `timeout_ms`, else `timeout` seconds.
    pub fn timeout_duration(&self) -> Duration {
        match self.timeout_ms {
            Some(ms) => Duration::from_millis(ms.into()),
            None => Duration::from_secs(self.timeout.into()),
        }
    }

    /// Whether `server` runs this monitor.
    pub fn runs_on(&self, server: &str) -> bool {
        self.servers
            .as_ref()
            .is_none_or(|list| list.iter().any(|s| s == server))
    }

    /// The settings as they apply on `server` (its override laid over them).
    pub fn for_server(&self, server: &str) -> MonitorConfig {
        let mut c = self.clone();
        if let Some(o) = self.per_server.get(server) {
            if let Some(k) = &o.kind {
                c.kind = k.clone();
            }
            // A server's own interval (seconds or milliseconds) replaces
            // the monitor's, in either unit.
            if let Some(i) = o.interval {
                c.interval = i;
                c.interval_ms = None;
            }
            if let Some(t) = o.timeout {
                c.timeout = t;
                c.timeout_ms = None;
            }
            c.interval_ms = o.interval_ms.or(c.interval_ms);
            c.timeout_ms = o.timeout_ms.or(c.timeout_ms);
            c.retry = o.retry.unwrap_or(c.retry);
            c.first_wait = o.first_wait.unwrap_or(c.first_wait);
            c.no_retry_on_timeout = o.no_retry_on_timeout.unwrap_or(c.no_retry_on_timeout);
            c.no_recovery_on_timeout = o.no_recovery_on_timeout.unwrap_or(c.no_recovery_on_timeout);
            c.delay_warning = o.delay_warning.unwrap_or(c.delay_warning);
            if let Some(r) = &o.recovery {
                c.recovery = r.clone();
            }
        }
        c.per_server.clear();
        c
    }

    /// The recovery target, with the default (the monitor's target
    /// resource) filled in. `None` when neither is set.
    pub fn recovery_target(&self) -> Option<RecoveryTarget> {
        self.recovery
            .target
            .clone()
            .or_else(|| self.target.clone().map(RecoveryTarget::Resource))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::message::MessageConfig;

    #[test]
    fn per_server_override_replaces_only_what_it_names() {
        let mut per_server = BTreeMap::new();
        per_server.insert(
            "s2".to_string(),
            MonitorOverride {
                kind: Some(MonitorKind::Message(MessageConfig {
                    category: "BMCNOTICE".into(),
                    keyword: "198.51.100.2".into(),
                    community: None,
                })),
                retry: Some(0),
                ..Default::default()
            },
        );
        let m = MonitorConfig {
            name: "mrw".into(),
            kind: MonitorKind::Message(MessageConfig {
                category: "BMCNOTICE".into(),
                keyword: "198.51.100.1".into(),
                community: None,
            }),
            interval: 5,
            timeout: 10,
            interval_ms: None,
            timeout_ms: None,
            retry: 2,
            first_wait: 0,
            timing: Timing::Always,
            target: None,
            servers: None,
            no_retry_on_timeout: false,
            no_recovery_on_timeout: false,
            delay_warning: 80,
            recovery: MonitorRecovery::default(),
            per_server,
        };
        let s1 = m.for_server("s1");
        let s2 = m.for_server("s2");
        assert_eq!(s1.retry, 2);
        assert_eq!(s2.retry, 0);
        assert_eq!(s2.interval, 5);
        match s2.kind {
            MonitorKind::Message(ref c) => assert_eq!(c.keyword, "198.51.100.2"),
            _ => panic!("kind changed"),
        }
        assert!(s2.per_server.is_empty());
        assert_eq!(s2.interval_duration(), Duration::from_secs(5));

        // Milliseconds replace seconds; a server's seconds replace them back.
        let mut m = m;
        m.interval_ms = Some(250);
        m.timeout_ms = Some(900);
        m.per_server.insert(
            "s3".into(),
            MonitorOverride {
                interval: Some(2),
                ..Default::default()
            },
        );
        let s1 = m.for_server("s1");
        assert_eq!(s1.interval_duration(), Duration::from_millis(250));
        assert_eq!(s1.timeout_duration(), Duration::from_millis(900));
        let s3 = m.for_server("s3");
        assert_eq!(s3.interval_duration(), Duration::from_secs(2));
        assert_eq!(s3.timeout_duration(), Duration::from_millis(900));
    }
}
