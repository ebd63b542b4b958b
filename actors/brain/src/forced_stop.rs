//! Forced stop: before a survivor takes over the groups of a server that
//! went silent, it makes sure that server runs nothing any more by stopping
//! it from outside (a script that powers it off through a hypervisor, a
//! cloud API or a switch; or its BMC, over IPMI). One method family, one file per
//! method's driver in the shell (`actors/src/forced_stop.rs`).
//!
//! Only a server that may start the groups (quorate, when partitions are
//! resolved) runs it, and only against a server that was heard and then
//! went silent: a server that left in order or whose guardian reported its
//! death holds nothing. A failed forced stop cancels the takeover (rc 433);
//! with partition resolution the takeover then waits out the silent
//! server's lease instead.

use serde::{Deserialize, Serialize};

use crate::config::ClusterConfig;
use crate::problems::Problems;

/// Default of `timeout_secs`.
pub const DEFAULT_TIMEOUT_SECS: u32 = 30;

/// `forced_stop`: how a silent server is stopped before its groups are
/// taken over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "ForcedStop")]
pub struct ForcedStopConfig {
    pub method: ForcedStopMethod,
    /// A forced stop that has not succeeded within this is a failure
    /// (1-3600 s).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u32,
}

fn default_timeout() -> u32 {
    DEFAULT_TIMEOUT_SECS
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForcedStopMethod {
    /// Runs `path` (relative to the configuration file's folder) with
    /// `CLP_SERVER_DOWN` (the server to stop), `CLP_SERVER_LOCAL` and
    /// `CLP_FORCESTOP_MODE=1`; exit status 0 means the server is off.
    Script(ScriptMethod),
    /// IPMI Chassis Control "power down" to the silent server's BMC
    /// (`servers[].bmc`), then Get Chassis Status until it says the power
    /// is off: only that confirmation is a success.
    Bmc,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "Script")]
pub struct ScriptMethod {
    pub path: String,
}

impl ForcedStopMethod {
    pub fn describe(&self) -> String {
        match self {
            ForcedStopMethod::Script(s) => format!("script {}", s.path),
            ForcedStopMethod::Bmc => "BMC power off".to_string(),
        }
    }
}

pub fn validate(config: &ClusterConfig, problems: &mut Problems) {
    let Some(f) = &config.forced_stop else {
        return;
    };
    problems.range("forced_stop.timeout_secs", f.timeout_secs, 1, 3600);
    match &f.method {
        ForcedStopMethod::Script(s) => {
            if s.path.trim().is_empty() {
                problems.push("forced_stop.method.path", "the script path is empty");
            }
        }
        ForcedStopMethod::Bmc => {
            if config.servers.len() > 1 {
                for (i, s) in config.servers.iter().enumerate() {
                    if s.bmc.is_none() {
                        problems.push(
                            format!("servers[{}].bmc", crate::validate::label(&s.name, i)),
                            "the forced stop by BMC (forced_stop.method: Bmc) needs every server's BMC",
                        );
                    }
                }
            }
        }
    }
}
