//! The alert catalog: every event the supervisor reports, with its module,
//! event id and level, in one place.
//!
//! Module names and ids follow ExpressCluster where the product defines the
//! event (`rc 32`: resource activation failed, ...). Ids of 1000 and above are
//! understudy's own, for events the product has no id for.

use serde::{Deserialize, Serialize};

use super::agent::AgentReport;
use super::config::FinalAction;
use super::monitoring::MonitorFinalAction;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Level {
    Info,
    Warning,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Warning => "WARN",
            Level::Error => "ERROR",
        }
    }
}

/// One alert as stored in the alert log and shown by `understudy alerts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// RFC 3339, UTC, millisecond precision.
    pub time: String,
    pub server: String,
    pub module: String,
    pub event_id: u32,
    pub level: Level,
    pub message: String,
}

/// Every event, with the facts its message needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    ClusterStarting {
        server: String,
        config_digest: String,
    },
    ClusterStopping {
        reason: String,
    },
    StopRequested {
        by: String,
    },
    SystemWillShutDown,
    SystemWillReboot,
    OsActionFailed {
        action: String,
        error: String,
    },
    /// Raised by the guardian after the daemon died and it released what
    /// the daemon held.
    DaemonDied {
        /// "killed by signal 9", "exit status 70".
        cause: String,
        addresses: usize,
        groups: usize,
        /// Filesystems of disk resources unmounted.
        filesystems: usize,
        /// OCF agent instances stopped.
        agents: usize,
    },
    /// Raised by the daemon at startup: an earlier run died without its
    /// guardian and left these behind.
    LeftoversReleased {
        addresses: Vec<String>,
        groups: Vec<u32>,
        /// Filesystems unmounted, as `DEVICE on MOUNT_POINT`.
        filesystems: Vec<String>,
        /// OCF agent instances stopped, as `provider:type instance`.
        agents: Vec<String>,
    },
    ReleaseFailed {
        errors: Vec<String>,
    },

    GroupStarting {
        group: String,
        by: String,
    },
    GroupStarted {
        group: String,
    },
    GroupStartFailed {
        group: String,
        detail: String,
    },
    GroupStopping {
        group: String,
        by: String,
    },
    GroupStopped {
        group: String,
    },
    GroupStopFailed {
        group: String,
        detail: String,
    },

    ResourceStarting {
        resource: String,
    },
    ResourceStarted {
        resource: String,
    },
    ResourceStartFailed {
        resource: String,
        error: String,
    },
    ResourceStopping {
        resource: String,
    },
    ResourceStopped {
        resource: String,
    },
    ResourceStopFailed {
        resource: String,
        error: String,
    },
    AsyncProcessExited {
        resource: String,
        pid: u32,
        status: String,
    },

    NoDestination {
        group: String,
        reason: String,
    },
    ActivationRetry {
        resource: String,
        attempt: u32,
    },
    ActivationFailover {
        group: String,
        resource: String,
        to: String,
    },
    ActivationContinuesAfterFailedFailover {
        group: String,
    },
    ActivationFinalAction {
        group: String,
        resource: String,
        action: FinalAction,
    },
    DeactivationRetry {
        resource: String,
        attempt: u32,
    },
    DeactivationFinalAction {
        group: String,
        resource: String,
        action: FinalAction,
    },

    MonitorStarted {
        monitor: String,
    },
    MonitorStopped {
        monitor: String,
    },
    MonitorStartFailed {
        monitor: String,
        error: String,
    },
    MonitorWarning {
        monitor: String,
        detail: String,
    },
    MonitorError {
        monitor: String,
        detail: String,
    },
    MonitorErrorToNormal {
        monitor: String,
    },
    MonitorWarningToNormal {
        monitor: String,
    },
    MonitorSuspended {
        monitor: String,
    },
    MonitorResumed {
        monitor: String,
    },
    AllMonitorsSuspended,
    AllMonitorsResumed,
    MonitorDelay {
        monitor: String,
        timeout_ms: u64,
        took_ms: u64,
        rate: u32,
    },
    NoRecoveryAtTimeout {
        monitor: String,
    },
    RecoveryTargetInactive {
        monitor: String,
        target: String,
    },
    RecoveryTargetRestarted {
        monitor: String,
        target: String,
    },
    RecoveryTargetRestartFailed {
        monitor: String,
        target: String,
        error: String,
    },
    RecoveryTargetFailedOver {
        monitor: String,
        target: String,
        to: String,
    },
    RecoveryFailoverFailed {
        monitor: String,
        target: String,
        reason: String,
    },
    RecoveryTargetStopped {
        monitor: String,
        target: String,
    },
    RecoveryTargetStopFailed {
        monitor: String,
        target: String,
        error: String,
    },
    MonitorFinalActionTaken {
        monitor: String,
        action: MonitorFinalAction,
    },
    RecoveryScriptDone {
        monitor: String,
        action: String,
    },
    RecoveryScriptFailed {
        monitor: String,
        action: String,
        error: String,
    },
    MonitorCountersCleared {
        monitor: String,
        by: String,
    },
    MessageReceived {
        category: String,
        keyword: String,
        clear: bool,
        monitors: Vec<String>,
    },
    UserspaceStall {
        monitor: String,
        seconds: u64,
        action: String,
    },
    UserspaceRecovered {
        monitor: String,
        seconds: u64,
    },

    // Membership and heartbeats.
    ServerJoined {
        server: String,
        returned: bool,
    },
    ServerLeft {
        server: String,
    },
    ServerDown {
        server: String,
        cause: String,
    },
    PathUp {
        server: String,
        path: usize,
        address: String,
    },
    PathDown {
        server: String,
        path: usize,
        address: String,
    },
    PathLoss {
        server: String,
        path: usize,
        address: String,
        lost: u64,
    },
    /// The BMC heartbeat path to a server answers (again).
    BmcPathUp {
        server: String,
        address: String,
    },
    /// The BMC of a server does not answer: its silence is judged by the
    /// LAN heartbeats alone, as without a BMC.
    BmcPathDown {
        server: String,
        address: String,
        error: String,
    },
    /// Every LAN path to a server is silent but its BMC says the power is
    /// on: its groups are not taken over on the LAN silence alone.
    TakeoverHeldPoweredOn {
        server: String,
    },
    WaitingForServers {
        seconds: u32,
    },
    AllServersStarted,
    StartupWaitOver {
        missing: Vec<String>,
    },
    ServerIsolated {
        server: String,
    },
    ServerRecovered {
        server: String,
        by: String,
    },
    ConfigMismatch {
        server: String,
        digest: String,
    },
    ConfigMatch {
        server: String,
    },
    TrafficRejected {
        what: String,
        count: u64,
        last: String,
    },
    LocalLinksDown,
    LocalLinksBack,
    /// This server is no longer quorate: it releases its groups.
    QuorumLost {
        reason: String,
    },
    /// This server is quorate (again).
    QuorumHeld {
        members: Vec<String>,
    },
    /// The action at NP occurrence is carried out.
    NpActionTaken {
        action: crate::partition::NpAction,
    },
    /// A silent server's groups wait for its lease to surely end.
    TakeoverWaiting {
        server: String,
        wait_ms: u64,
    },
    /// An operator said a silent server is down (off): no wait for it.
    ServerConfirmedDown {
        server: String,
        by: String,
    },
    /// The witness cannot be used (its driver could not start, or it stopped
    /// answering, or never answered): its vote is left out until it
    /// answers again.
    WitnessUnavailable {
        error: String,
    },
    /// A gate of partition resolution (ping or HTTP target) has had no
    /// answer within the lease.
    TargetLost {
        target: String,
        error: String,
    },
    /// A gate that had lapsed answers again.
    TargetReached {
        target: String,
    },
    ForcedStopStarted {
        server: String,
        method: String,
    },
    ForcedStopDone {
        server: String,
    },
    /// The forced stop failed: the takeover is cancelled (or waits out
    /// the silent server's lease).
    ForcedStopFailed {
        server: String,
        error: String,
        then: String,
    },
    PeerUnreachable {
        server: String,
        error: String,
    },
    SuspendRequested {
        by: String,
    },
    ResumeRequested {
        by: String,
    },

    // Groups between servers.
    FailoverStarted {
        group: String,
        from: String,
        to: String,
    },
    FailoverCompleted {
        group: String,
    },
    FailoverFailed {
        group: String,
        error: String,
    },
    DestinationChosen {
        group: String,
        server: String,
        reason: String,
    },
    MoveStarted {
        group: String,
        to: String,
        by: String,
    },
    MoveCompleted {
        group: String,
        to: String,
    },
    MoveFailed {
        group: String,
        error: String,
    },
    FailbackStarted {
        group: String,
        to: String,
    },
    DoubleActivity {
        group: String,
        servers: Vec<String>,
    },
    FailoverSkippedSuspended {
        server: String,
    },

    // The alert service's own events (mail, syslog, warning lamps).
    AlertTest {
        by: String,
        to: String,
    },
    AlertSettingsChanged {
        changed: String,
    },
    AlertServiceStarted,
    AlertServiceStopped,
    AlertMonitoringResumed {
        by: String,
    },
    AlertMonitoringSuspended {
        by: String,
        hours: u32,
    },
    MailSent {
        server: String,
        alert: String,
    },
    MailFailed {
        cause: String,
        alert: String,
    },
    SyslogFailed {
        destination: String,
        error: String,
    },
    /// The SNMP trap notifier could not send to a manager (never names
    /// the community).
    SnmpTrapFailed {
        destination: String,
        error: String,
    },
    LampDone {
        server: String,
        lamp: String,
        state: String,
    },
    LampRefused {
        server: String,
        lamp: String,
        error: String,
    },
    LampUnreachable {
        server: String,
        lamp: String,
        error: String,
    },

    /// A message of `clp_httpmon` / `clp_smtpmon` (module `httpmon` /
    /// `smtpmon`, the product's ids), sent by the command to the daemon.
    Agent(AgentReport),

    /// A message written by an operator or a script with `understudy log`
    /// / `clplogcmd` (module `logcmd`, [`USER_MESSAGE_ID`]), its text as
    /// given (checked by [`user_message`]).
    UserMessage {
        level: Level,
        text: String,
    },
}

/// Module of the messages of `understudy log` / `clplogcmd`. The
/// product's alert catalog has no module or id for them: both are
/// understudy's (docs/command-names.md).
pub const USER_MESSAGE_MODULE: &str = "logcmd";
/// Event id of every message of `understudy log` / `clplogcmd`, whatever
/// its level (ids of 1000 and above are understudy's own).
pub const USER_MESSAGE_ID: u32 = 1000;
/// Longest message `understudy log` / `clplogcmd` takes, in bytes: it fits
/// with its header in one RFC 3164 syslog line (1024 bytes).
pub const USER_MESSAGE_MAX_BYTES: usize = 511;

/// The text of a user's message as it is logged: control characters
/// (newlines, tabs) become spaces, so that it stays one line in the alert
/// log and in syslog. `Err` says why it is refused: empty (or only
/// spaces), or longer than [`USER_MESSAGE_MAX_BYTES`].
pub fn user_message(text: &str) -> Result<String, String> {
    if text.len() > USER_MESSAGE_MAX_BYTES {
        return Err(format!(
            "the message is {} bytes long; at most {USER_MESSAGE_MAX_BYTES} are taken",
            text.len()
        ));
    }
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if line.trim().is_empty() {
        return Err("the message is empty".into());
    }
    Ok(line)
}

/// A level as `clplogcmd -l` and `understudy log --level` spell it: `INFO`,
/// `WARN` or `ERR` (any case; `WARNING` and `ERROR` too, as the alert
/// log and syslog spell them).
pub fn parse_level(text: &str) -> Result<Level, String> {
    match text.to_ascii_uppercase().as_str() {
        "INFO" => Ok(Level::Info),
        "WARN" | "WARNING" => Ok(Level::Warning),
        "ERR" | "ERROR" => Ok(Level::Error),
        _ => Err(format!("level {text:?} is not INFO, WARN or ERR")),
    }
}

impl Event {
    /// Module, event id, level.
    pub fn id(&self) -> (&'static str, u32, Level) {
        use Event::*;
        use FinalAction::*;
        use Level::*;
        match self {
            ClusterStarting { .. } => ("pm", 1, Info),
            ClusterStopping { .. } => ("pm", 2, Info),
            StopRequested { .. } => ("pm", 31, Info),
            SystemWillShutDown => ("pm", 23, Info),
            SystemWillReboot => ("pm", 25, Info),
            OsActionFailed { .. } => ("pm", 1001, Error),
            DaemonDied { .. } => ("pm", 1200, Error),
            LeftoversReleased { .. } => ("pm", 1201, Warning),
            ReleaseFailed { .. } => ("pm", 1202, Error),

            GroupStarting { .. } => ("rc", 10, Info),
            GroupStarted { .. } => ("rc", 11, Info),
            GroupStartFailed { .. } => ("rc", 12, Error),
            GroupStopping { .. } => ("rc", 20, Info),
            GroupStopped { .. } => ("rc", 21, Info),
            GroupStopFailed { .. } => ("rc", 22, Error),

            ResourceStarting { .. } => ("rc", 30, Info),
            ResourceStarted { .. } => ("rc", 31, Info),
            ResourceStartFailed { .. } => ("rc", 32, Error),
            ResourceStopping { .. } => ("rc", 40, Info),
            ResourceStopped { .. } => ("rc", 41, Info),
            ResourceStopFailed { .. } => ("rc", 42, Error),
            AsyncProcessExited { .. } => ("rc", 1040, Warning),

            NoDestination { .. } => ("rc", 65, Error),
            ActivationRetry { .. } => ("rc", 200, Info),
            ActivationFailover { .. } => ("rc", 201, Info),
            ActivationContinuesAfterFailedFailover { .. } => ("rc", 206, Info),
            ActivationFinalAction { action, .. } => match action {
                StopGroup => ("rc", 202, Info),
                StopClusterService => ("rc", 203, Info),
                StopClusterServiceAndShutdownOs => ("rc", 204, Info),
                StopClusterServiceAndRebootOs => ("rc", 205, Info),
                NoOperation => ("rc", 1207, Warning),
                NoOperationNextResource => ("rc", 1208, Warning),
            },
            DeactivationRetry { .. } => ("rc", 220, Info),
            DeactivationFinalAction { action, .. } => match action {
                StopGroup => ("rc", 222, Info),
                StopClusterService => ("rc", 223, Info),
                StopClusterServiceAndShutdownOs => ("rc", 224, Info),
                StopClusterServiceAndRebootOs => ("rc", 225, Info),
                NoOperation => ("rc", 1227, Warning),
                NoOperationNextResource => ("rc", 1228, Warning),
            },

            MonitorStarted { .. } => ("rm", 1, Info),
            MonitorStopped { .. } => ("rm", 2, Info),
            MonitorWarning { .. } => ("rm", 4, Warning),
            MonitorStartFailed { .. } => ("rm", 7, Error),
            MonitorError { .. } => ("rm", 9, Error),
            RecoveryTargetStopped { .. } => ("rm", 12, Info),
            RecoveryTargetRestarted { .. } => ("rm", 13, Info),
            RecoveryTargetFailedOver { .. } => ("rm", 14, Info),
            MonitorFinalActionTaken { action, .. } => match action {
                MonitorFinalAction::StopClusterService => ("rm", 15, Info),
                MonitorFinalAction::StopClusterServiceAndShutdownOs => ("rm", 16, Info),
                MonitorFinalAction::StopClusterServiceAndRebootOs => ("rm", 17, Info),
                MonitorFinalAction::StopResource | MonitorFinalAction::StopGroup => {
                    ("rm", 1012, Info)
                }
                MonitorFinalAction::NoOperation => ("rm", 1011, Warning),
            },
            RecoveryTargetStopFailed { .. } => ("rm", 18, Error),
            RecoveryTargetRestartFailed { .. } => ("rm", 19, Error),
            RecoveryFailoverFailed { .. } => ("rm", 20, Error),
            RecoveryTargetInactive { .. } => ("rm", 25, Warning),
            MonitorErrorToNormal { .. } => ("rm", 26, Info),
            MonitorSuspended { .. } => ("rm", 29, Info),
            MonitorResumed { .. } => ("rm", 30, Info),
            AllMonitorsSuspended => ("rm", 31, Info),
            AllMonitorsResumed => ("rm", 32, Info),
            MonitorWarningToNormal { .. } => ("rm", 49, Info),
            MonitorDelay { .. } => ("rm", 71, Warning),
            RecoveryScriptDone { .. } => ("rm", 82, Info),
            RecoveryScriptFailed { .. } => ("rm", 83, Error),
            NoRecoveryAtTimeout { .. } => ("rm", 193, Warning),
            MonitorCountersCleared { .. } => ("rm", 1020, Info),
            UserspaceStall { .. } => ("rm", 1100, Error),
            UserspaceRecovered { .. } => ("rm", 1101, Info),
            MessageReceived { .. } => ("trnsv", 10, Info),
            UserMessage { level, .. } => (USER_MESSAGE_MODULE, USER_MESSAGE_ID, *level),

            ServerJoined { .. } => ("nm", 1, Info),
            ServerLeft { .. } => ("nm", 2, Info),
            ServerDown { .. } => ("nm", 1310, Error),
            PathUp { .. } => ("nm", 3, Info),
            PathDown { .. } => ("nm", 4, Warning),
            WaitingForServers { .. } => ("nm", 5, Info),
            AllServersStarted => ("nm", 6, Info),
            StartupWaitOver { .. } => ("nm", 7, Warning),
            PathLoss { .. } => ("nm", 71, Warning),
            BmcPathUp { .. } => ("nm", 3, Info),
            BmcPathDown { .. } => ("nm", 4, Warning),
            TakeoverHeldPoweredOn { .. } => ("nm", 38, Warning),
            PeerUnreachable { .. } => ("nm", 80, Error),
            ServerIsolated { .. } => ("nm", 1300, Warning),
            ServerRecovered { .. } => ("nm", 1301, Info),
            ConfigMismatch { .. } => ("nm", 1302, Error),
            ConfigMatch { .. } => ("nm", 1303, Info),
            TrafficRejected { .. } => ("nm", 1304, Warning),
            LocalLinksDown => ("nm", 1305, Error),
            LocalLinksBack => ("nm", 1306, Info),
            QuorumLost { .. } => ("nm", 30, Error),
            QuorumHeld { .. } => ("nm", 31, Info),
            NpActionTaken { .. } => ("nm", 32, Error),
            TakeoverWaiting { .. } => ("nm", 33, Info),
            ServerConfirmedDown { .. } => ("nm", 34, Warning),
            WitnessUnavailable { .. } => ("nm", 35, Error),
            TargetReached { .. } => ("nm", 36, Info),
            TargetLost { .. } => ("nm", 37, Error),
            ForcedStopStarted { .. } => ("rc", 1430, Info),
            ForcedStopDone { .. } => ("rc", 1431, Info),
            ForcedStopFailed { .. } => ("rc", 433, Error),
            SuspendRequested { .. } => ("pm", 35, Info),
            ResumeRequested { .. } => ("pm", 34, Info),

            MoveStarted { .. } => ("rc", 50, Info),
            MoveCompleted { .. } => ("rc", 51, Info),
            MoveFailed { .. } => ("rc", 52, Error),
            FailoverStarted { .. } => ("rc", 60, Info),
            FailoverCompleted { .. } => ("rc", 61, Info),
            FailoverFailed { .. } => ("rc", 62, Error),
            DestinationChosen { .. } => ("rc", 64, Info),
            FailbackStarted { .. } => ("rc", 74, Info),
            DoubleActivity { .. } => ("rc", 92, Error),
            FailoverSkippedSuspended { .. } => ("rc", 1065, Warning),

            AlertTest { .. } => ("alert", 1011, Info),
            AlertSettingsChanged { .. } => ("alert", 1012, Info),
            AlertServiceStarted => ("alert", 1, Info),
            AlertServiceStopped => ("alert", 2, Info),
            AlertMonitoringResumed { .. } => ("alert", 3, Info),
            AlertMonitoringSuspended { .. } => ("alert", 4, Info),
            MailSent { .. } => ("alert", 5, Info),
            MailFailed { .. } => ("alert", 6, Error),
            SyslogFailed { .. } => ("alert", 1010, Warning),
            SnmpTrapFailed { .. } => ("alert", 1013, Warning),
            LampDone { .. } => ("lamp", 5, Info),
            LampRefused { .. } => ("lamp", 6, Error),
            LampUnreachable { .. } => ("lamp", 7, Error),
            Agent(report) => report.id(),
        }
    }

    /// The message text (our own words).
    pub fn message(&self) -> String {
        use Event::*;
        match self {
            ClusterStarting { server, config_digest } => {
                format!("cluster service starting on server {server} (configuration {config_digest})")
            }
            ClusterStopping { reason } => format!("cluster service stopping: {reason}"),
            StopRequested { by } => format!("request to stop the cluster service from {by}"),
            SystemWillShutDown => "the operating system is about to be shut down".into(),
            SystemWillReboot => "the operating system is about to be rebooted".into(),
            OsActionFailed { action, error } => {
                format!("could not {action} the operating system: {error}")
            }
            DaemonDied {
                cause,
                addresses,
                groups,
                filesystems,
                agents,
            } => {
                let mut released = vec![
                    count(*addresses, "address", "addresses"),
                    count(*groups, "process group", "process groups"),
                ];
                // Named only when there were some: most clusters have none.
                if *filesystems > 0 {
                    released.push(count(*filesystems, "filesystem", "filesystems"));
                }
                if *agents > 0 {
                    released.push(count(*agents, "OCF agent instance", "OCF agent instances"));
                }
                format!(
                    "cluster daemon died ({cause}); guardian released {}",
                    released.join(", ")
                )
            }
            LeftoversReleased {
                addresses,
                groups,
                filesystems,
                agents,
            } => {
                let mut what: Vec<String> = agents
                    .iter()
                    .map(|a| format!("OCF agent instance {a}"))
                    .collect();
                what.extend(
                    addresses.iter().map(|a| format!("address {a}")));
                what.extend(groups.iter().map(|g| format!("process group {g}")));
                what.extend(filesystems.iter().map(|f| format!("filesystem {f}")));
                format!(
                    "an earlier run died without its guardian; released what it left behind: {}",
                    what.join(", ")
                )
            }
            ReleaseFailed { errors } => {
                format!("could not release everything the daemon held: {}", errors.join("; "))
            }
            GroupStarting { group, by } => format!("group {group}: activation started ({by})"),
            GroupStarted { group } => format!("group {group}: activation completed"),
            GroupStartFailed { group, detail } => {
                format!("group {group}: activation failed ({detail})")
            }
            GroupStopping { group, by } => format!("group {group}: stop started ({by})"),
            GroupStopped { group } => format!("group {group}: stop completed"),
            GroupStopFailed { group, detail } => format!("group {group}: stop failed ({detail})"),
            ResourceStarting { resource } => format!("resource {resource}: activation started"),
            ResourceStarted { resource } => format!("resource {resource}: activation completed"),
            ResourceStartFailed { resource, error } => {
                format!("resource {resource}: activation failed: {error}")
            }
            ResourceStopping { resource } => format!("resource {resource}: stop started"),
            ResourceStopped { resource } => format!("resource {resource}: stop completed"),
            ResourceStopFailed { resource, error } => {
                format!("resource {resource}: stop failed: {error}")
            }
            AsyncProcessExited { resource, pid, status } => format!(
                "resource {resource}: asynchronous start script (pid {pid}) exited: {status}"
            ),
            NoDestination { group, reason } => {
                format!("group {group}: no server can take over ({reason})")
            }
            ActivationRetry { resource, attempt } => format!(
                "resource {resource}: activation failed, trying again (attempt {attempt})"
            ),
            ActivationFailover { group, resource, to } => format!(
                "group {group}: moving to server {to} because resource {resource} could not be activated"
            ),
            ActivationContinuesAfterFailedFailover { group } => format!(
                "group {group}: failover was not possible; continuing with the final action here"
            ),
            ActivationFinalAction { group, resource, action } => format!(
                "group {group}: resource {resource} could not be activated; final action: {}",
                describe(*action, true)
            ),
            DeactivationRetry { resource, attempt } => format!(
                "resource {resource}: stop failed, trying again (attempt {attempt})"
            ),
            DeactivationFinalAction { group, resource, action } => format!(
                "group {group}: resource {resource} could not be stopped; final action: {}",
                describe(*action, false)
            ),

            MonitorStarted { monitor } => format!("monitor {monitor}: monitoring started"),
            MonitorStopped { monitor } => {
                format!("monitor {monitor}: monitoring stopped (its target is not active)")
            }
            MonitorStartFailed { monitor, error } => {
                format!("monitor {monitor}: could not start monitoring: {error}")
            }
            MonitorWarning { monitor, detail } => format!("monitor {monitor}: warning: {detail}"),
            MonitorError { monitor, detail } => format!("monitor {monitor}: error detected: {detail}"),
            MonitorErrorToNormal { monitor } => {
                format!("monitor {monitor}: back to normal after an error")
            }
            MonitorWarningToNormal { monitor } => {
                format!("monitor {monitor}: back to normal after a warning")
            }
            MonitorSuspended { monitor } => format!("monitor {monitor}: monitoring suspended"),
            MonitorResumed { monitor } => format!("monitor {monitor}: monitoring resumed"),
            AllMonitorsSuspended => "every monitor suspended".into(),
            AllMonitorsResumed => "every monitor resumed".into(),
            MonitorDelay { monitor, timeout_ms, took_ms, rate } => format!(
                "monitor {monitor}: a check took {took_ms} ms, over {rate} % of its {} timeout",
                super::monitoring::seconds_or_ms(std::time::Duration::from_millis(*timeout_ms))
            ),
            NoRecoveryAtTimeout { monitor } => format!(
                "monitor {monitor}: timed out; no recovery, as configured for timeouts"
            ),
            RecoveryTargetInactive { monitor, target } => format!(
                "monitor {monitor}: {target} is not active, so it is not recovered"
            ),
            RecoveryTargetRestarted { monitor, target } => {
                format!("monitor {monitor}: {target} restarted to recover")
            }
            RecoveryTargetRestartFailed { monitor, target, error } => {
                format!("monitor {monitor}: restarting {target} failed: {error}")
            }
            RecoveryTargetFailedOver { monitor, target, to } => {
                format!("monitor {monitor}: {target} failed over to server {to}")
            }
            RecoveryFailoverFailed { monitor, target, reason } => {
                format!("monitor {monitor}: failing {target} over was not possible: {reason}")
            }
            RecoveryTargetStopped { monitor, target } => {
                format!("monitor {monitor}: {target} stopped as the final action")
            }
            RecoveryTargetStopFailed { monitor, target, error } => {
                format!("monitor {monitor}: stopping {target} failed: {error}")
            }
            MonitorFinalActionTaken { monitor, action } => {
                format!("monitor {monitor}: final action: {}", action.describe())
            }
            RecoveryScriptDone { monitor, action } => {
                format!("monitor {monitor}: script before {action} finished")
            }
            RecoveryScriptFailed { monitor, action, error } => {
                format!("monitor {monitor}: script before {action} failed: {error}")
            }
            MonitorCountersCleared { monitor, by } => {
                format!("monitor {monitor}: recovery counters cleared by {by}")
            }
            MessageReceived { category, keyword, clear, monitors } => format!(
                "{} message {category}/{keyword} received; monitors: {}",
                if *clear { "clear" } else { "error" },
                if monitors.is_empty() { "none".to_string() } else { monitors.join(", ") }
            ),
            UserspaceStall { monitor, seconds, action } => format!(
                "monitor {monitor}: the cluster service has not answered for {seconds} s; final action: {action}"
            ),
            UserspaceRecovered { monitor, seconds } => format!(
                "monitor {monitor}: the cluster service answers again after {seconds} s of silence"
            ),
            ServerJoined { server, returned } => format!(
                "server {server} {}",
                if *returned { "is back in the cluster" } else { "has joined the cluster" }
            ),
            ServerLeft { server } => format!("server {server} has stopped its cluster service"),
            ServerDown { server, cause } => format!("server {server} is down ({cause})"),
            PathUp { server, path, address } => {
                format!("heartbeat path {path} to server {server} ({address}) is up")
            }
            PathDown { server, path, address } => {
                format!("heartbeat path {path} to server {server} ({address}) is silent")
            }
            PathLoss { server, path, address, lost } => format!(
                "heartbeat path {path} to server {server} ({address}): {lost} heartbeats lost"
            ),
            BmcPathUp { server, address } => {
                format!("BMC heartbeat path to server {server} ({address}) is up")
            }
            BmcPathDown { server, address, error } => format!(
                "BMC heartbeat path to server {server} ({address}) is silent: {error}; the server is judged by its LAN heartbeats alone"
            ),
            TakeoverHeldPoweredOn { server } => format!(
                "every LAN heartbeat path to server {server} is silent but its BMC says the power is on: its groups are not taken over until it is confirmed off (its BMC says off, a forced stop, or `understudy server confirm-down {server}`)"
            ),
            WaitingForServers { seconds } => {
                format!("waiting up to {seconds} s for the other servers before starting groups")
            }
            AllServersStarted => "every server of the cluster has been heard".into(),
            StartupWaitOver { missing } => format!(
                "startup wait over without hearing {}; groups start on the servers that are up",
                missing.join(", ")
            ),
            ServerIsolated { server } => format!(
                "server {server} is back but stays out of the cluster until recovered (understudy server recover {server})"
            ),
            ServerRecovered { server, by } => format!("server {server} recovered by {by}"),
            ConfigMismatch { server, digest } => format!(
                "server {server} runs another configuration (digest {digest}); it gets no groups"
            ),
            ConfigMatch { server } => {
                format!("server {server} runs the same configuration again")
            }
            TrafficRejected { what, count, last } => {
                format!("{count} {what} dropped since the last report; last: {last}")
            }
            LocalLinksDown => "every interconnect interface of this server is down: its groups stop and it takes none until a link returns".into(),
            LocalLinksBack => "an interconnect interface of this server is up again".into(),
            QuorumLost { reason } => format!(
                "network partition: this server lost its quorum ({reason}); it releases its groups and takes none until it is quorate again"
            ),
            QuorumHeld { members } => format!(
                "this server is quorate with {}",
                members.join(", ")
            ),
            NpActionTaken { action } => {
                format!("action at network partition: {}", action.describe())
            }
            TakeoverWaiting { server, wait_ms } => format!(
                "server {server} is silent: what it held is taken over in {wait_ms} ms, once its lease has surely run out"
            ),
            TargetLost { target, error } => format!(
                "network partition resolution {target}: no answer within the lease ({error}): this server stays quorate only while it hears every other server"
            ),
            TargetReached { target } => {
                format!("network partition resolution {target}: answers again")
            }
            WitnessUnavailable { error } => format!(
                "the etcd witness cannot be used ({error}): its vote is left out, this server is quorate only with its peers"
            ),
            ForcedStopStarted { server, method } => {
                format!("forced stop of server {server} ({method}) before its groups are taken over")
            }
            ForcedStopDone { server } => {
                format!("server {server} was stopped by force: its groups are taken over")
            }
            ForcedStopFailed { server, error, then } => {
                format!("forced stop of server {server} failed: {error}; {then}")
            }
            ServerConfirmedDown { server, by } => format!(
                "server {server} confirmed down by {by}: its groups are taken over without waiting for its lease"
            ),
            PeerUnreachable { server, error } => {
                format!("cannot reach server {server}: {error}")
            }
            SuspendRequested { by } => format!("cluster suspended by {by}: no automatic recovery or failover"),
            ResumeRequested { by } => format!("cluster resumed by {by}"),
            FailoverStarted { group, from, to } => {
                format!("group {group}: failover from {from} to {to} started")
            }
            FailoverCompleted { group } => format!("group {group}: failover completed"),
            FailoverFailed { group, error } => format!("group {group}: failover failed: {error}"),
            DestinationChosen { group, server, reason } => {
                format!("group {group}: server {server} chosen as destination ({reason})")
            }
            MoveStarted { group, to, by } => {
                format!("group {group}: moving to {to} (requested by {by})")
            }
            MoveCompleted { group, to } => format!("group {group}: now online on {to}"),
            MoveFailed { group, error } => format!("group {group}: move failed: {error}"),
            FailbackStarted { group, to } => {
                format!("group {group}: failing back to {to}, the first server of its order")
            }
            DoubleActivity { group, servers } => format!(
                "group {group} is active on more than one server: {}",
                servers.join(", ")
            ),
            FailoverSkippedSuspended { server } => format!(
                "server {server} is down but the cluster is suspended: its groups are not taken over"
            ),
            AlertTest { by, to } => format!("test alert to {to}, requested by {by}"),
            AlertSettingsChanged { changed } => {
                format!("alert settings changed: {changed}")
            }
            AlertServiceStarted => "alert service started".into(),
            AlertServiceStopped => "alert service stopped".into(),
            AlertMonitoringResumed { by } => format!("alert notification resumed by {by}"),
            AlertMonitoringSuspended { by, hours } => format!(
                "alert notification suspended by {by}; it resumes by itself after {hours} h"
            ),
            MailSent { server, alert } => format!("report mail sent through {server}: [{alert}]"),
            MailFailed { cause, alert } => format!("report mail not sent: {cause}: [{alert}]"),
            SyslogFailed { destination, error } => {
                format!("syslog to {destination} failed: {error}")
            }
            SnmpTrapFailed { destination, error } => {
                format!("SNMP trap to {destination} not sent: {error}")
            }
            LampDone { server, lamp, state } => {
                format!("warning lamp {lamp} of server {server} set to {state}")
            }
            LampRefused { server, lamp, error } => {
                format!("warning lamp {lamp} of server {server} refused the command: {error}")
            }
            LampUnreachable { server, lamp, error } => {
                format!("warning lamp {lamp} of server {server} could not be driven: {error}")
            }
            Agent(report) => report.text(),
            UserMessage { text, .. } => text.clone(),
        }
    }

    pub fn to_alert(&self, time: String, server: &str) -> Alert {
        let (module, event_id, level) = self.id();
        Alert {
            time,
            server: server.to_string(),
            module: module.to_string(),
            event_id,
            level,
            message: self.message(),
        }
    }
}

/// "1 address", "2 addresses".
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A final action in words, for alert messages.
pub fn describe(action: FinalAction, activation: bool) -> &'static str {
    use FinalAction::*;
    match (action, activation) {
        (NoOperationNextResource, true) => "none, activating the next resource",
        (NoOperationNextResource, false) => "none, stopping the next resource",
        (NoOperation, true) => "none, the remaining resources are not activated",
        (NoOperation, false) => "none, the remaining resources are left running",
        (StopGroup, _) => "stop the group",
        (StopClusterService, _) => "stop the cluster service",
        (StopClusterServiceAndShutdownOs, _) => "stop the cluster service and shut down the OS",
        (StopClusterServiceAndRebootOs, _) => "stop the cluster service and reboot the OS",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_ids_where_the_product_has_them() {
        let e = Event::ResourceStartFailed {
            resource: "app".into(),
            error: "exit status 1".into(),
        };
        assert_eq!(e.id(), ("rc", 32, Level::Error));
        let a = e.to_alert("2026-11-22T00:00:00.000Z".into(), "s1");
        assert_eq!(a.module, "rc");
        assert_eq!(a.event_id, 32);
        assert!(a.message.contains("app") && a.message.contains("exit status 1"));
        assert_eq!(
            Event::ActivationFinalAction {
                group: "g".into(),
                resource: "r".into(),
                action: FinalAction::StopClusterServiceAndRebootOs
            }
            .id()
            .1,
            205
        );
    }

    #[test]
    fn user_messages_keep_their_level_and_are_bounded() {
        let e = Event::UserMessage {
            level: Level::Warning,
            text: "backup started".into(),
        };
        assert_eq!(e.id(), ("logcmd", 1000, Level::Warning));
        assert_eq!(e.message(), "backup started");
        assert_eq!(parse_level("ERR"), Ok(Level::Error));
        assert_eq!(parse_level("warn"), Ok(Level::Warning));
        assert_eq!(parse_level("Info"), Ok(Level::Info));
        assert!(parse_level("DEBUG")
            .unwrap_err()
            .contains("INFO, WARN or ERR"));
        assert_eq!(user_message("two\nlines\t!"), Ok("two lines !".into()));
        let longest = "é".repeat(255) + "x";
        assert_eq!(longest.len(), USER_MESSAGE_MAX_BYTES);
        assert_eq!(user_message(&longest), Ok(longest.clone()));
        let over = longest + "x";
        assert_eq!(
            user_message(&over),
            Err("the message is 512 bytes long; at most 511 are taken".into())
        );
        assert_eq!(user_message(""), Err("the message is empty".into()));
        assert_eq!(user_message(" \n "), Err("the message is empty".into()));
    }

    #[test]
    fn bmc_events_are_heartbeat_path_events() {
        let down = Event::BmcPathDown {
            server: "s2".into(),
            address: "192.0.2.2:623".into(),
            error: "no answer within 2000 ms".into(),
        };
        assert_eq!(down.id(), ("nm", 4, Level::Warning));
        assert!(down.message().contains("192.0.2.2:623"));
        let up = Event::BmcPathUp {
            server: "s2".into(),
            address: "192.0.2.2:623".into(),
        };
        assert_eq!(up.id(), ("nm", 3, Level::Info));
        let held = Event::TakeoverHeldPoweredOn {
            server: "s2".into(),
        };
        assert_eq!(held.id(), ("nm", 38, Level::Warning));
    }

    #[test]
    fn guardian_events() {
        let died = Event::DaemonDied {
            cause: "killed by signal 9".into(),
            addresses: 1,
            groups: 2,
            filesystems: 0,
            agents: 0,
        };
        assert_eq!(died.id(), ("pm", 1200, Level::Error));
        assert_eq!(
            died.message(),
            "cluster daemon died (killed by signal 9); guardian released 1 address, 2 process groups"
        );
        let died = Event::DaemonDied {
            cause: "killed by signal 9".into(),
            addresses: 0,
            groups: 1,
            filesystems: 2,
            agents: 0,
        };
        assert_eq!(
            died.message(),
            "cluster daemon died (killed by signal 9); guardian released 0 addresses, 1 process group, 2 filesystems"
        );
        let left = Event::LeftoversReleased {
            addresses: vec!["198.51.100.10/24 on eth0".into()],
            groups: vec![4242],
            filesystems: vec!["/dev/sdb2 on /mnt/sdb2".into()],
            agents: vec![],
        };
        assert_eq!(left.id().1, 1201);
        assert!(left.message().ends_with(
            "address 198.51.100.10/24 on eth0, process group 4242, filesystem /dev/sdb2 on /mnt/sdb2"
        ));
    }
}
