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

    /// Whether it runs or is starting (a copy that counts, not one going).
    pub fn runs_or_starts(self) -> bool {
        matches!(
            self,
            RunState::Online | RunState::OnlinePending | RunState::OnlineFailure
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerState {
    Online,
    Offline,
    /// Not known yet: no heartbeat from it since this daemon started.
    Unknown,
    /// Came back after being declared down and waits to be recovered
    /// (`understudy server recover NAME`); it is given no groups.
    Isolated,
}

impl ServerState {
    pub fn as_str(self) -> &'static str {
        match self {
            ServerState::Online => "Online",
            ServerState::Offline => "Offline",
            ServerState::Unknown => "Unknown",
            ServerState::Isolated => "Isolated",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PathState {
    Up,
    Down,
    /// Nothing heard on it yet.
    Unknown,
}

/// One heartbeat path to a server (or, for this server, its own end).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathStatus {
    /// The server's address on this path.
    pub address: String,
    pub state: PathState,
    /// Heartbeats accepted on this path.
    pub received: u64,
    /// Heartbeats that never arrived (gaps in the sequence numbers).
    pub lost: u64,
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
    /// Heartbeat paths, in the order of the server's interconnects.
    #[serde(default)]
    pub paths: Vec<PathStatus>,
    /// Its heartbeats carry another configuration digest: it gets no groups.
    #[serde(default)]
    pub config_mismatch: bool,
    /// Its BMC heartbeat path, as this server polls it (absent: no BMC, or
    /// this server's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bmc: Option<BmcPathStatus>,
}

/// The BMC heartbeat path to a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BmcPathStatus {
    /// `address:port` (never the user or password).
    pub address: String,
    /// "on", "off", "unreachable", or "unknown" (not polled yet).
    pub state: String,
    /// Why it is unreachable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The server is silent, its BMC says the power is on: its groups are
    /// not taken over (no blind failover).
    #[serde(default)]
    pub takeover_held: bool,
}

/// Heartbeat packets and peer requests dropped since the daemon started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedTraffic {
    /// Not a packet of ours, truncated or undecodable.
    pub garbled: u64,
    /// Authentication code does not match (wrong key or altered).
    pub forged: u64,
    /// Authentic but already seen (replayed or duplicated).
    pub replayed: u64,
    /// Of a protocol version this server does not speak.
    #[serde(default)]
    pub unknown_version: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub cluster: String,
    pub server: String,
    /// Process id of the daemon answering (the guardian is its parent).
    #[serde(default)]
    pub pid: u32,
    pub config_digest: String,
    pub stopping: bool,
    /// Automatic recovery (monitor ladders, failover) is suspended.
    #[serde(default)]
    pub suspended: bool,
    pub servers: Vec<ServerStatus>,
    pub groups: Vec<GroupStatus>,
    pub monitors: Vec<MonitorStatus>,
    /// Garbled or oversized control requests dropped since the daemon started.
    pub malformed_requests: u64,
    #[serde(default)]
    pub rejected: RejectedTraffic,
    /// Network-partition resolution as this server sees it; absent when
    /// the configuration has none. (Boxed: it keeps the control protocol's
    /// responses small; the JSON is the same.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<Box<PartitionStatus>>,
    /// Sections of a configuration pushed to this server's file that apply
    /// only once its cluster service restarts (empty: nothing waits).
    #[serde(default)]
    pub restart_pending: Vec<String>,
    /// The SNMP trap endpoints of this server's `BMCNOTICE` message
    /// monitors; absent when it has none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traps: Vec<TrapListenerStatus>,
}

/// `status`: one SNMP trap endpoint (`crate::traps`) and what arrived on
/// it since the daemon started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrapListenerStatus {
    /// `IP:port`.
    pub address: String,
    /// The message receive monitors it feeds.
    pub monitors: Vec<String>,
    /// The socket is bound.
    pub listening: bool,
    /// Why it could not be bound (it tries again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Traps delivered to at least one monitor.
    pub traps: u64,
    /// Traps whose community no monitor of the endpoint accepts (dropped).
    pub wrong_community: u64,
    /// Undecodable or truncated datagrams (dropped).
    pub garbled: u64,
    /// Datagrams longer than the largest trap taken (dropped).
    pub oversized: u64,
    /// Well-formed SNMP that is not a v1 or v2c trap (dropped).
    pub other: u64,
}

/// `status`: the partition state of the server answering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionStatus {
    /// The configured methods (`Majority`).
    pub methods: Vec<String>,
    /// This server may keep and start groups.
    pub quorate: bool,
    /// Milliseconds until this server's quorum ends unless more heartbeats
    /// renew it; `None` when quorate alone (no peer needed) or not quorate.
    pub lease_ms_left: Option<u64>,
    /// Every other server not heard here.
    pub silent: Vec<SilentServer>,
    /// The etcd witness as this server's driver last found it; absent
    /// without a witness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witness: Option<WitnessStatus>,
    /// The gates (ping and HTTP targets), one entry each; absent without.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetStatus>,
}

/// `status`: this server's view of one gate of partition resolution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetStatus {
    /// `Ping` or `Http`.
    pub method: String,
    /// What it probes: `ping 198.51.100.254`, `HTTP http://...`.
    pub target: String,
    /// The last round reached a target.
    pub reachable: bool,
    /// Milliseconds its "reached" verdict still counts; `None`: lapsed.
    #[serde(default)]
    pub verdict_ms_left: Option<u64>,
    /// Why the last round failed, if it did.
    #[serde(default)]
    pub error: Option<String>,
}

/// `status`: this server's view of the witness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitnessStatus {
    /// This server holds the witness's vote.
    pub holds: bool,
    /// The witness answered the last round.
    pub reachable: bool,
    /// Why the last round failed, if it did.
    #[serde(default)]
    pub error: Option<String>,
}

/// A server this one does not hear, and when its groups may be taken over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilentServer {
    pub name: String,
    /// Known to hold nothing (it left in order, died under its guardian,
    /// or an operator confirmed it down): no wait.
    pub cleared: bool,
    /// Milliseconds until its groups may be taken over (0: now): every
    /// member of this server's quorum stopped hearing it, and its lease
    /// plus the margin run out then. `None`: cleared, or no such agreement
    /// yet (or this server is not quorate). A forced stop, while it is
    /// pending or running, is waited for as well.
    pub takeover_ms_left: Option<u64>,
    /// The forced stop a takeover waits for: `pending`, `running`, or
    /// `failed` (the takeover then waits out the lease); `None`: none
    /// needed (no `forced_stop` configured, or cleared).
    #[serde(default)]
    pub forced_stop: Option<String>,
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
    /// Fixed-rate heartbeats sent (every path), and how late they left
    /// (the heartbeat thread's send jitter), microseconds.
    #[serde(default)]
    pub beats: u64,
    #[serde(default)]
    pub beat_late_p50_us: u32,
    #[serde(default)]
    pub beat_late_p99_us: u32,
    #[serde(default)]
    pub beat_late_max_us: u32,
}
