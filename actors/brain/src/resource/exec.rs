//! exec resource settings. Pure data plus validation; no I/O here.

use serde::{Deserialize, Serialize};

use crate::config::DEFAULT_SCRIPT_TIMEOUT;
use crate::problems::Problems;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum StartMode {
    /// The start script's exit status decides success.
    #[default]
    Sync,
    /// The start script is launched and left running; its pid is tracked.
    Async,
}

/// `Exec(start: "/etc/app/start.sh", stop: Some("/etc/app/stop.sh"))`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "Exec")]
pub struct ExecConfig {
    /// Start script (absolute, or relative to the configuration file's folder).
    pub start: String,
    /// Stop script; always synchronous.
    #[serde(default)]
    pub stop: Option<String>,
    #[serde(default)]
    pub start_mode: StartMode,
    /// Seconds (1-9999) before a synchronous start script is killed.
    #[serde(default = "default_timeout")]
    pub start_timeout: u32,
    /// Seconds (1-9999) before the stop script is killed.
    #[serde(default = "default_timeout")]
    pub stop_timeout: u32,
    /// Script log file; default `<state-dir>/log/<resource>.log`.
    #[serde(default)]
    pub log: Option<String>,
}

fn default_timeout() -> u32 {
    DEFAULT_SCRIPT_TIMEOUT
}

impl ExecConfig {
    pub fn validate(&self, path: &str, problems: &mut Problems) {
        if self.start.trim().is_empty() {
            problems.push(format!("{path}.start"), "script path is empty");
        }
        if let Some(stop) = &self.stop {
            if stop.trim().is_empty() {
                problems.push(format!("{path}.stop"), "script path is empty");
            }
        }
        problems.range(
            &format!("{path}.start_timeout"),
            self.start_timeout,
            1,
            9999,
        );
        problems.range(&format!("{path}.stop_timeout"), self.stop_timeout, 1, 9999);
    }
}
