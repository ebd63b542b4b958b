//! The control socket protocol: one JSON request line, one JSON response line.

use serde::{Deserialize, Serialize};

use crate::model::agent::AgentReport;
use crate::model::catalog::{Alert, Level};
use crate::model::state::{ClusterStatus, MonitorStats};

/// Bumped when a request or response changes incompatibly.
pub const PROTOCOL_VERSION: u32 = 1;
/// Longest request line accepted, in bytes.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub version: u32,
    pub command: Command,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum Command {
    Status,
    Alerts {
        count: usize,
    },
    /// Start a group on `server` (default: the server asked).
    GroupStart {
        group: String,
        #[serde(default)]
        server: Option<String>,
    },
    /// Stop a group wherever it runs.
    GroupStop {
        group: String,
    },
    /// Move a group to `to` (default: the next server of its order).
    GroupMove {
        group: String,
        #[serde(default)]
        to: Option<String>,
    },
    /// Stop the cluster service on every server.
    ClusterStop,
    /// Stop the cluster service on every server, then shut down (or reboot)
    /// every server's OS.
    ClusterShutdown {
        reboot: bool,
    },
    /// Keep groups running but stop automatic recovery and failover.
    ClusterSuspend,
    ClusterResume,
    /// Stop the cluster service on this server (its groups move to the
    /// next server of their order), then shut down or reboot the OS.
    ServerShutdown {
        reboot: bool,
    },
    /// Take an isolated server back into the cluster.
    ServerRecover {
        server: String,
    },
    /// An operator checked that a silent server is off: the survivors take
    /// its groups over without waiting for its lease.
    ServerConfirmDown {
        server: String,
    },
    /// Validate a configuration and write it on every server.
    ConfigPush {
        text: String,
    },
    /// Suspend (or resume) alert notification on every server.
    AlertNotification {
        suspend: bool,
    },
    /// Send a test alert through the chosen notifiers of this server.
    AlertTest {
        mail: bool,
        syslog: bool,
        lamp: bool,
        /// The SNMP trap notifier (absent in older clients' requests).
        #[serde(default)]
        snmp: bool,
    },
    /// Switch a server's warning lamp off.
    LampOff {
        server: String,
    },
    /// The alert settings in force, as RON.
    AlertExport,
    /// Replace the alert settings on every server with these (RON).
    AlertImport {
        text: String,
    },
    /// Suspend monitors (all of them when `monitors` is empty).
    MonitorSuspend {
        monitors: Vec<String>,
    },
    /// Resume monitors (all of them when `monitors` is empty).
    MonitorResume {
        monitors: Vec<String>,
    },
    /// Reset a monitor's reactivation and failover counters.
    MonitorClear {
        monitor: String,
    },
    /// Scheduling figures of the monitors; `reset` starts them afresh.
    MonitorStats {
        reset: bool,
    },
    /// A message for message receive monitors: an error notice, or a clear.
    MessageSend {
        category: String,
        keyword: String,
        clear: bool,
    },
    /// A message of `clp_httpmon` / `clp_smtpmon` for the alert log (and
    /// the notifiers, as routed).
    AgentReport {
        report: AgentReport,
    },
    /// A message for this server's alert log (`understudy log --alert`,
    /// `clplogcmd --alert`): module `logcmd`, id 1000, the level given.
    /// Recorded only: it goes to no notifier.
    Log {
        level: Level,
        message: String,
    },
    /// Test hook (only when the daemon runs with UNDERSTUDY_TEST_HOOKS=1):
    /// block the coordinator for `seconds`.
    DebugStall {
        seconds: u64,
    },
    /// Test hook: raise `count` test alerts at once, routed to mail (the
    /// alert benchmark's burst).
    DebugBurst {
        count: u32,
    },
    /// Test hook: panic in the coordinator (a bug stand-in): the daemon
    /// must die of it, and its guardian clean up.
    DebugPanic,
}

impl Command {
    /// Commands that change the cluster need root or the admin group.
    pub fn is_mutating(&self) -> bool {
        !matches!(
            self,
            Command::Status | Command::Alerts { .. } | Command::MonitorStats { reset: false }
        )
    }

    /// How the command is typed, for messages.
    pub fn spelled(&self) -> String {
        match self {
            Command::Status => "status".into(),
            Command::Alerts { .. } => "alerts".into(),
            Command::GroupStart { group, server } => match server {
                Some(s) => format!("group start {group} --server {s}"),
                None => format!("group start {group}"),
            },
            Command::GroupStop { group } => format!("group stop {group}"),
            Command::GroupMove { group, to } => match to {
                Some(t) => format!("group move {group} --to {t}"),
                None => format!("group move {group}"),
            },
            Command::ClusterStop => "cluster stop".into(),
            Command::ClusterShutdown { reboot } => {
                format!("cluster shutdown{}", if *reboot { " --reboot" } else { "" })
            }
            Command::ClusterSuspend => "cluster suspend".into(),
            Command::ClusterResume => "cluster resume".into(),
            Command::ServerShutdown { reboot } => {
                format!("server shutdown{}", if *reboot { " --reboot" } else { "" })
            }
            Command::ServerRecover { server } => format!("server recover {server}"),
            Command::ServerConfirmDown { server } => format!("server confirm-down {server}"),
            Command::ConfigPush { .. } => "config push".into(),
            Command::AlertTest { .. } => "alert test".into(),
            Command::LampOff { server } => format!("lamp off --server {server}"),
            Command::AlertExport => "alert export".into(),
            Command::AlertImport { .. } => "alert import".into(),
            Command::AlertNotification { suspend } => {
                format!("alert {}", if *suspend { "suspend" } else { "resume" })
            }
            Command::MonitorSuspend { monitors } => spelled_list("monitor suspend", monitors),
            Command::MonitorResume { monitors } => spelled_list("monitor resume", monitors),
            Command::MonitorClear { monitor } => format!("monitor clear {monitor}"),
            Command::MonitorStats { .. } => "monitor stats".into(),
            Command::MessageSend {
                category,
                keyword,
                clear,
            } => format!(
                "message send --category {category} --keyword {keyword}{}",
                if *clear { " --clear" } else { "" }
            ),
            Command::AgentReport { report } => {
                format!("{} report", report.kind.command())
            }
            Command::Log { level, .. } => format!("log --level {}", level.as_str()),
            Command::DebugStall { seconds } => format!("debug stall {seconds}"),
            Command::DebugBurst { count } => format!("debug burst {count}"),
            Command::DebugPanic => "debug panic".into(),
        }
    }
}

fn spelled_list(verb: &str, names: &[String]) -> String {
    if names.is_empty() {
        format!("{verb} --all")
    } else {
        format!("{verb} {}", names.join(" "))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Response {
    /// The command was carried out; `message` says what happened.
    Done {
        message: String,
    },
    /// (Boxed: it keeps every response small; the JSON is the same.)
    Status {
        status: Box<ClusterStatus>,
    },
    Alerts {
        alerts: Vec<Alert>,
    },
    MonitorStats {
        stats: MonitorStats,
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
