//! Monitor kinds' settings. Each kind has its own file holding its config
//! struct, its defaults and its checks; [`MonitorKind`] registers them.
//!
//! The probes that carry the checks out are in the shell
//! (`understudy-actors`, `monitor/<kind>.rs`), one per kind, built from these
//! settings.

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

use serde::{Deserialize, Serialize};

use crate::problems::Problems;

/// Every monitor kind, with its settings. Adding a kind means adding a file
/// and a variant here (and its probe in the shell).
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
    Disk(disk::DiskMonitorConfig),
    Ocf(ocf::OcfMonitorConfig),
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
            MonitorKind::Disk($c) => $e,
            MonitorKind::Ocf($c) => $e,
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
            MonitorKind::Disk(_) => "disk",
            MonitorKind::Ocf(_) => "ocf",
        }
    }

    pub fn validate(&self, path: &str, problems: &mut Problems) {
        each_kind!(self, c => c.validate(path, problems))
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
            // Without an agent of its own it runs its target's.
            MonitorKind::Ocf(c) if c.agent.is_none() => FixedTiming::Active {
                resource_kind: "ocf",
            },
            _ => FixedTiming::Free,
        }
    }
}

/// Helpers for the kinds' unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use crate::problems::Problems;

    /// The problems `validate` finds, as `path: message` lines.
    pub fn problems_of(validate: impl FnOnce(&str, &mut Problems)) -> Vec<String> {
        let mut p = Problems::default();
        validate("monitors[w].kind", &mut p);
        p.into_vec().into_iter().map(|p| p.to_string()).collect()
    }
}
