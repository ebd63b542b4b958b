//! Monitor resource kinds. The settings of every kind, and [`MonitorKind`]
//! which registers them, are pure and live in the brain crate
//! (`understudy_brain::monitor`); each file here holds a kind's probe and
//! builds it from those settings ([`BuildProbe`]).
//!
//! A probe performs one check and answers with a [`Check`]. The monitor actor
//! ([`actor`]) schedules checks, applies the timeout, and feeds results to the
//! pure detection and recovery machines of the model.

pub mod actor;
pub mod custom;
pub mod disk;
pub mod fip;
pub mod http;
pub mod ip;
pub mod link;
pub mod message;
pub mod ocf;
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

pub use understudy_brain::monitor::{FixedTiming, MonitorKind};

use crate::model::config::{ClusterConfig, OsActions};
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
    /// The check timeout (the userspace watchdog uses it).
    pub timeout: std::time::Duration,
    pub alerter: Alerter,
    pub os_actions: OsActions,
    /// The monitor's final action (the userspace watchdog carries it out
    /// itself, since the coordinator is what has stalled).
    pub final_action: crate::model::monitoring::MonitorFinalAction,
}

/// Performs checks for one monitor.
pub trait Probe {
    fn check(&mut self, env: &ProbeEnv) -> CheckFuture;
}

/// Builds the probe of a kind from its settings, once, when the monitor actor
/// starts.
pub trait BuildProbe {
    fn probe(&self, build: &ProbeBuild) -> Result<Box<dyn Probe>, String>;
}

impl BuildProbe for MonitorKind {
    fn probe(&self, build: &ProbeBuild) -> Result<Box<dyn Probe>, String> {
        match self {
            MonitorKind::Pid(c) => c.probe(build),
            MonitorKind::Ip(c) => c.probe(build),
            MonitorKind::Http(c) => c.probe(build),
            MonitorKind::Smtp(c) => c.probe(build),
            MonitorKind::Tcp(c) => c.probe(build),
            MonitorKind::Custom(c) => c.probe(build),
            MonitorKind::Process(c) => c.probe(build),
            MonitorKind::System(c) => c.probe(build),
            MonitorKind::Fip(c) => c.probe(build),
            MonitorKind::Link(c) => c.probe(build),
            MonitorKind::Userspace(c) => c.probe(build),
            MonitorKind::Message(c) => c.probe(build),
            MonitorKind::Disk(c) => c.probe(build),
            MonitorKind::Ocf(c) => c.probe(build),
        }
    }
}

/// Helpers for the kinds' unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::{Check, Probe, ProbeEnv};

    /// One check on a fresh current-thread runtime.
    pub fn run_check(probe: &mut dyn Probe) -> Check {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(probe.check(&ProbeEnv::default()))
    }
}
