//! Ids and states of groups and resources, and the status snapshot the
//! control socket returns.

use serde::{Deserialize, Serialize};

pub use super::detection::MonitorState;

/// State of a failover group (or of one group resource) on a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunState {
    Offline,
    OnlinePending,
    Online,
    OfflinePending,
    /// Activation failed (the group or resource is partly or not active).
    OnlineFailure,
    /// Deactivation failed (something may still be active).
    OfflineFailure,
}

impl RunState {
    /// The product's spelling, as shown by `status`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Offline => "Offline",
            RunState::OnlinePending => "Online Pending",
            RunState::Online => "Online",
            RunState::OfflinePending => "Offline Pending",
            RunState::OnlineFailure => "Online Failure",
            RunState::OfflineFailure => "Offline Failure",
        }
    }

    /// Whether something of it may be active (so a stop has work to do).
    pub fn may_be_active(self) -> bool {
        !matches!(self, RunState::Offline)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerState {
    Online,
    Offline,
    /// Not known yet: no heartbeat from it (single-server mode, or not joined).
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceStatus {
    pub name: String,
    pub kind: String,
    pub state: RunState,
    /// Pid of an asynchronous exec start script while it runs.
    pub pid: Option<u32>,
    /// Last error, if the last operation failed.
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupStatus {
    pub name: String,
    pub state: RunState,
    /// Server the group is (or was last being) active on.
    pub current: Option<String>,
    /// Servers that may run it, in failover order.
    pub servers: Vec<String>,
    pub resources: Vec<ResourceStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerStatus {
    pub name: String,
    pub state: ServerState,
    /// This daemon's server.
    pub local: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub cluster: String,
    pub server: String,
    pub config_digest: String,
    pub stopping: bool,
    pub servers: Vec<ServerStatus>,
    pub groups: Vec<GroupStatus>,
    pub monitors: Vec<MonitorStatus>,
    /// Garbled or oversized control requests dropped since the daemon started.
    pub malformed_requests: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorStatus {
    pub name: String,
    pub kind: String,
    pub state: MonitorState,
    /// False when the monitor is configured not to run on this server.
    pub runs_here: bool,
    pub target: Option<String>,
    /// `resource app`, `group web` or `local server`.
    pub recovery_target: String,
    /// Reactivations and failovers done by the recovery ladder since the
    /// counters were last cleared.
    pub reactivations: u32,
    pub failovers: u32,
    /// Why the last check failed or warned.
    pub last_error: Option<String>,
}

/// How late monitor checks start, from `understudy monitor stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorStats {
    /// Checks started since the daemon started (or the last reset).
    pub checks: u64,
    /// Lateness (actual minus scheduled start), microseconds, over the most
    /// recent checks.
    pub late_p50_us: u32,
    pub late_p99_us: u32,
    pub late_max_us: u32,
}
