//! `userspace` monitor settings (the product's user-mode monitor, userw):
//! the watchdog device to pet, if any. The probe and its watchdog thread are
//! in the shell.

use serde::{Deserialize, Serialize};

use crate::problems::Problems;

/// `Userspace(watchdog_device: Some("/dev/watchdog"))`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename = "UserspaceConfig")]
pub struct UserspaceConfig {
    /// A watchdog device (absolute path, e.g. `/dev/watchdog`) to pet while
    /// the cluster service answers. Absent: no device.
    #[serde(default)]
    pub watchdog_device: Option<String>,
}

impl UserspaceConfig {
    pub fn validate(&self, path: &str, problems: &mut Problems) {
        if let Some(dev) = &self.watchdog_device {
            if !dev.starts_with('/') {
                problems.push(
                    format!("{path}.watchdog_device"),
                    "must be an absolute path",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        let mut p = Problems::default();
        UserspaceConfig::default().validate("m", &mut p);
        UserspaceConfig {
            watchdog_device: Some("/dev/watchdog".into()),
        }
        .validate("m", &mut p);
        assert!(p.is_empty());
        UserspaceConfig {
            watchdog_device: Some("watchdog".into()),
        }
        .validate("m", &mut p);
        assert_eq!(
            p.into_vec()[0].to_string(),
            "m.watchdog_device: must be an absolute path"
        );
        let c: UserspaceConfig = ron::from_str("UserspaceConfig()").unwrap();
        assert_eq!(c, UserspaceConfig::default());
    }

    #[test]
    fn example_configuration_is_valid() {
        let text = r#"Cluster(name: "c", servers: [Server(name: "s1")], groups: [],
            monitors: [
              Monitor(name: "userw", kind: Userspace(watchdog_device: "/dev/watchdog"),
                      interval: 10, timeout: 90,
                      recovery: (target: LocalServer, final_action: StopClusterServiceAndRebootOs)),
            ])"#;
        let config = crate::config::parse("c.ron", text).unwrap();
        assert_eq!(
            config.monitors[0].kind,
            super::super::MonitorKind::Userspace(UserspaceConfig {
                watchdog_device: Some("/dev/watchdog".into())
            })
        );
    }
}
