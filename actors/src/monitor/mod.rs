//! Monitor resource kinds. Each kind lives in its own file holding its config
//! struct next to its probe; [`MonitorKind`] registers them.
//!
//! A probe performs one check and answers with a [`Check`]. The monitor actor
//! ([`actor`]) schedules checks, applies the timeout, and feeds results to the
//! pure detection and recovery machines of the model.

pub mod actor;
pub mod custom;
pub mod fip;
pub mod http;
pub mod ip;
pub mod link;
pub mod message;
pub mod pid;
pub mod process;
pub mod smtp;
pub mod system;
pub mod tcp;
pub mod userspace;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::config::{ClusterConfig, OsActions};
use crate::model::problems::Problems;
use crate::notify::alert_log::Alerter;

/// The answer of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Normal,
    /// Working, but past a warning level (e.g. the system monitor).
    Warning(String),
    /// The check failed; the text says why, for alerts and status.
    Error(String),
}

/// One check in flight. Probes run on the actors' thread, so the future need
/// not be `Send`; blocking work belongs in `tokio::task::spawn_blocking`.
pub type CheckFuture = Pin<Box<dyn Future<Output = Check>>>;

/// Facts the monitor actor knows at the moment of a check.
#[derive(Debug, Clone, Default)]
pub struct ProbeEnv {
    /// Pid of the target exec resource's asynchronous start script, if it
    /// runs (for the pid monitor).
    pub target_pid: Option<u32>,
    /// The latest message for a message receive monitor: `Some(text)` while
    /// an error notice is outstanding, `None` after a clear.
    pub message: Option<String>,
}

/// Everything a kind may need to build its probe, once, when the monitor
/// actor starts.
#[derive(Clone)]
pub struct ProbeBuild {
    pub monitor: String,
    pub config: Arc<ClusterConfig>,
    /// Resource named by the monitor's `target`, if any.
    pub target: Option<String>,
    /// Folder of the configuration file: relative script paths start there.
    pub base_dir: PathBuf,
    /// Folder for per-monitor script logs.
    pub log_dir: PathBuf,
    /// The check timeout, seconds (the userspace watchdog uses it).
    pub timeout_secs: u32,
    pub alerter: Alerter,
    pub os_actions: OsActions,
    /// Asks the coordinator to answer; resolves when it did (userspace).
    pub liveness: actix::Recipient<crate::coordinator::Liveness>,
    /// The monitor's final action (the userspace watchdog carries it out
    /// itself, since the coordinator is what has stalled).
    pub final_action: crate::model::monitoring::MonitorFinalAction,
}

/// Performs checks for one monitor.
pub trait Probe {
    fn check(&mut self, env: &ProbeEnv) -> CheckFuture;
}

/// Every monitor kind, with its settings. Adding a kind means adding a file
/// and a variant here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MonitorKind {
    Pid(pid::PidConfig),
    Ip(ip::IpConfig),
    Http(http::HttpConfig),
    Smtp(smtp::SmtpConfig),
    Tcp(tcp::TcpConfig),
    Custom(custom::CustomConfig),
    Process(process::ProcessConfig),
    System(system::SystemConfig),
    Fip(fip::FipMonitorConfig),
    Link(link::LinkConfig),
    Userspace(userspace::UserspaceConfig),
    Message(message::MessageConfig),
}

/// Whether a kind may check at any time or only while its target resource is
/// active; some kinds fix it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixedTiming {
    /// The kind needs an active target resource of this resource kind.
    Active {
        resource_kind: &'static str,
    },
    Always,
    /// The monitor's own `timing` decides.
    Free,
}

macro_rules! each_kind {
    ($self:expr, $c:ident => $e:expr) => {
        match $self {
            MonitorKind::Pid($c) => $e,
            MonitorKind::Ip($c) => $e,
            MonitorKind::Http($c) => $e,
            MonitorKind::Smtp($c) => $e,
            MonitorKind::Tcp($c) => $e,
            MonitorKind::Custom($c) => $e,
            MonitorKind::Process($c) => $e,
            MonitorKind::System($c) => $e,
            MonitorKind::Fip($c) => $e,
            MonitorKind::Link($c) => $e,
            MonitorKind::Userspace($c) => $e,
            MonitorKind::Message($c) => $e,
        }
    };
}

impl MonitorKind {
    /// Short type name as shown in status (`pid`, `http`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            MonitorKind::Pid(_) => "pid",
            MonitorKind::Ip(_) => "ip",
            MonitorKind::Http(_) => "http",
            MonitorKind::Smtp(_) => "smtp",
            MonitorKind::Tcp(_) => "tcp",
            MonitorKind::Custom(_) => "custom",
            MonitorKind::Process(_) => "process",
            MonitorKind::System(_) => "system",
            MonitorKind::Fip(_) => "fip",
            MonitorKind::Link(_) => "link",
            MonitorKind::Userspace(_) => "userspace",
            MonitorKind::Message(_) => "message",
        }
    }

    pub fn validate(&self, path: &str, problems: &mut Problems) {
        each_kind!(self, c => c.validate(path, problems))
    }

    pub fn probe(&self, build: &ProbeBuild) -> Result<Box<dyn Probe>, String> {
        each_kind!(self, c => c.probe(build))
    }

    pub fn fixed_timing(&self) -> FixedTiming {
        match self {
            MonitorKind::Pid(_) => FixedTiming::Active {
                resource_kind: "exec",
            },
            MonitorKind::Fip(_) => FixedTiming::Active {
                resource_kind: "fip",
            },
            MonitorKind::Userspace(_) => FixedTiming::Always,
            _ => FixedTiming::Free,
        }
    }
}

/// Helpers for the kinds' unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::{Check, Probe, ProbeEnv};
    use crate::model::problems::Problems;

    /// The problems `validate` finds, as `path: message` lines.
    pub fn problems_of(validate: impl FnOnce(&str, &mut Problems)) -> Vec<String> {
        let mut p = Problems::default();
        validate("monitors[w].kind", &mut p);
        p.into_vec().into_iter().map(|p| p.to_string()).collect()
    }

    /// One check on a fresh current-thread runtime.
    pub fn run_check(probe: &mut dyn Probe) -> Check {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(probe.check(&ProbeEnv::default()))
    }
}
