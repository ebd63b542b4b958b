//! The watchdog device the guardian keeps alive while the daemon holds
//! groups under a partition lease: the last line of self-fencing, for a box
//! whose guardian stalls or dies too. Its configuration and checks; the
//! guardian drives the device (`src/watchdog.rs`).

use serde::{Deserialize, Serialize};

use crate::config::ClusterConfig;
use crate::problems::Problems;

/// `watchdog: (device: "/dev/watchdog", timeout_secs: 1)`: armed (opened)
/// while the daemon holds groups, kept alive up to the daemon's fence
/// deadline and never past it, disarmed (magic close) once nothing is
/// held. Should the guardian itself stall or die while groups are held,
/// the device resets the box within `timeout_secs` of the deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "Watchdog")]
pub struct WatchdogConfig {
    /// The watchdog device (a hardware watchdog, or softdog's).
    #[serde(default = "default_watchdog_device")]
    pub device: String,
    /// Set on the device when it is armed (1-60 s; at most half the
    /// partition's margin).
    #[serde(default = "default_watchdog_timeout")]
    pub timeout_secs: u32,
}

fn default_watchdog_device() -> String {
    "/dev/watchdog".into()
}

fn default_watchdog_timeout() -> u32 {
    1
}

/// Checks `guardian.watchdog`: the device's path, its timeout, and that the
/// device fires before the survivors take over (timeout at most half the
/// partition margin: the guardian keeps it alive up to lease end + margin/2).
pub fn validate(config: &ClusterConfig, problems: &mut Problems) {
    let Some(w) = &config.guardian.watchdog else {
        return;
    };
    if !w.device.starts_with('/') {
        problems.push(
            "guardian.watchdog.device",
            format!("\"{}\" is not an absolute path", w.device),
        );
    }
    problems.range("guardian.watchdog.timeout_secs", w.timeout_secs, 1, 60);
    if let Some(p) = &config.partition {
        let margin = p.margin_ms(config);
        if u64::from(w.timeout_secs) * 1000 > u64::from(margin) / 2 {
            problems.push(
                "guardian.watchdog.timeout_secs",
                format!(
                    "{} s is more than half the partition margin ({margin} ms): the survivors could take over before the device resets this server (raise partition.margin_ms to at least {} ms)",
                    w.timeout_secs,
                    u64::from(w.timeout_secs) * 2000
                ),
            );
        }
    }
}

/// A watchdog without partition resolution is never armed: no lease, no
/// fence deadline.
pub fn warnings(config: &ClusterConfig) -> Vec<String> {
    if config.guardian.watchdog.is_some() && config.partition.is_none() {
        vec![
            "guardian.watchdog: never armed without `partition` (it guards the partition lease)"
                .into(),
        ]
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse;

    fn check(partition: &str, watchdog: &str) -> Vec<String> {
        let text = format!(
            "Cluster(name: \"t\", servers: [Server(name: \"a\", interconnects: [\"198.51.100.1\"]), \
             Server(name: \"b\", interconnects: [\"198.51.100.2\"])], \
             heartbeat: (interval_ms: 100, timeout_ms: 300, key_file: \"k\"), {partition} \
             guardian: (watchdog: {watchdog}))"
        );
        match parse("t.ron", &text) {
            Ok(_) => Vec::new(),
            Err(problems) => problems.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn the_watchdog_must_fire_before_the_survivors_take_over() {
        let majority = "partition: (methods: [Majority], margin_ms: 2000),";
        let p = check(majority, "(timeout_secs: 1)");
        assert!(p.is_empty(), "{p:?}");
        let p = check(majority, "(timeout_secs: 2)");
        assert!(
            p.iter()
                .any(|p| p.contains("guardian.watchdog.timeout_secs")
                    && p.contains("at least 4000 ms")),
            "{p:?}"
        );
        let p = check("", "(device: \"watchdog\", timeout_secs: 0)");
        for field in ["guardian.watchdog.device", "guardian.watchdog.timeout_secs"] {
            assert!(p.iter().any(|p| p.contains(field)), "{field}: {p:?}");
        }
    }
}
