//! The control socket protocol: one JSON request line, one JSON response line.

use serde::{Deserialize, Serialize};

use crate::model::catalog::Alert;
use crate::model::state::ClusterStatus;

/// Bumped when a request or response changes incompatibly.
pub const PROTOCOL_VERSION: u32 = 1;
/// Longest request line accepted, in bytes.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub version: u32,
    pub command: Command,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum Command {
    Status,
    Alerts { count: usize },
    GroupStart { group: String },
    GroupStop { group: String },
    ClusterStop,
}

impl Command {
    /// Commands that change the cluster need root or the admin group.
    pub fn is_mutating(&self) -> bool {
        !matches!(self, Command::Status | Command::Alerts { .. })
    }

    /// How the command is typed, for messages.
    pub fn spelled(&self) -> String {
        match self {
            Command::Status => "status".into(),
            Command::Alerts { .. } => "alerts".into(),
            Command::GroupStart { group } => format!("group start {group}"),
            Command::GroupStop { group } => format!("group stop {group}"),
            Command::ClusterStop => "cluster stop".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Response {
    /// The command was carried out; `message` says what happened.
    Done {
        message: String,
    },
    Status {
        status: ClusterStatus,
    },
    Alerts {
        alerts: Vec<Alert>,
    },
    /// The command was refused or failed.
    Error {
        message: String,
    },
    /// The caller may not run this command.
    Denied {
        message: String,
    },
}
