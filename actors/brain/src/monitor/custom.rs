//! `custom` monitor settings (the product's custom monitor, genw): the
//! user's script, its arguments and how it is run. The probe, which starts
//! the script, is in the shell.

use serde::{Deserialize, Serialize};

use crate::problems::Problems;

/// How the script is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum CustomMode {
    /// Every check runs the script; its exit status decides.
    #[default]
    Sync,
    /// The script keeps running; its exit is the error.
    Async,
}

/// `Custom(script: "check.sh", args: ["db"], mode: Sync, normal_exit: 0)`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename = "CustomConfig")]
pub struct CustomConfig {
    /// The script (absolute, or relative to the configuration file's folder).
    pub script: String,
    /// Arguments passed to the script.
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub mode: CustomMode,
    /// Exit status (0-255) meaning "all is well" in `Sync` mode.
    #[serde(default)]
    pub normal_exit: i32,
    /// Append the script's output, with timestamps, to
    /// `<state-dir>/log/monitor-<monitor>.log`; `false` discards it.
    #[serde(default = "default_log")]
    pub log: bool,
}

fn default_log() -> bool {
    true
}

impl CustomConfig {
    pub fn validate(&self, path: &str, problems: &mut Problems) {
        if self.script.trim().is_empty() {
            problems.push(format!("{path}.script"), "script path is empty");
        }
        if !(0..=255).contains(&self.normal_exit) {
            problems.push(
                format!("{path}.normal_exit"),
                format!("{} is out of range (0-255)", self.normal_exit),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(script: &str, mode: CustomMode) -> CustomConfig {
        CustomConfig {
            script: script.into(),
            args: vec![],
            mode,
            normal_exit: 0,
            log: true,
        }
    }

    #[test]
    fn validation() {
        let mut p = Problems::default();
        config("check.sh", CustomMode::Sync).validate("m", &mut p);
        assert!(p.is_empty());
        let mut bad = config(" ", CustomMode::Sync);
        bad.normal_exit = 256;
        bad.validate("m", &mut p);
        let got: Vec<String> = p.into_vec().iter().map(|p| p.to_string()).collect();
        assert_eq!(
            got,
            vec![
                "m.script: script path is empty",
                "m.normal_exit: 256 is out of range (0-255)"
            ]
        );
    }

    #[test]
    fn defaults_from_ron() {
        let c: CustomConfig = ron::from_str(r#"CustomConfig(script: "check.sh")"#).unwrap();
        assert_eq!(c, config("check.sh", CustomMode::Sync));
    }

    #[test]
    fn example_configuration_is_valid() {
        let text = r#"Cluster(name: "c", servers: [Server(name: "s1")], groups: [],
            monitors: [
              Monitor(name: "genw", kind: Custom(script: "check.sh"),
                      recovery: (target: LocalServer, final_action: StopClusterService)),
              Monitor(name: "genw2", kind: Custom(script: "/opt/app/watch.sh", args: ["--db", "main"],
                                                  mode: Async, log: false),
                      recovery: (target: LocalServer)),
            ])"#;
        let config = crate::config::parse("c.ron", text).unwrap();
        match &config.monitors[1].kind {
            super::super::MonitorKind::Custom(c) => {
                assert_eq!(c.mode, CustomMode::Async);
                assert_eq!(c.normal_exit, 0);
                assert!(!c.log);
            }
            other => panic!("{other:?}"),
        }
    }
}
