//! Group resource kinds' settings, one file per kind; [`ResourceKind`]
//! registers them. The drivers that act on them are in the shell
//! (`understudy-actors`, `resource/<kind>/driver.rs`).

pub mod disk;
pub mod exec;
pub mod fip;
pub mod ocf;

use serde::{Deserialize, Serialize};

use crate::problems::Problems;

/// Every group resource kind, with its settings. Adding a kind means adding a
/// file and a variant here (and its driver in the shell).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResourceKind {
    Exec(exec::ExecConfig),
    Fip(fip::FipConfig),
    Disk(disk::DiskConfig),
    Ocf(ocf::OcfConfig),
}

impl ResourceKind {
    /// Short type name as shown in status (`exec`, `fip`, `disk`, `ocf`).
    pub fn type_name(&self) -> &'static str {
        match self {
            ResourceKind::Exec(_) => "exec",
            ResourceKind::Fip(_) => "fip",
            ResourceKind::Disk(_) => "disk",
            ResourceKind::Ocf(_) => "ocf",
        }
    }

    pub fn validate(&self, path: &str, problems: &mut Problems) {
        match self {
            ResourceKind::Exec(c) => c.validate(path, problems),
            ResourceKind::Fip(c) => c.validate(path, problems),
            ResourceKind::Disk(c) => c.validate(path, problems),
            ResourceKind::Ocf(c) => c.validate(path, problems),
        }
    }

    /// Kinds this kind depends on when the resource does not list its
    /// dependencies explicitly: an exec resource depends on the group's
    /// floating IPs and disks (the product's default), and so does an OCF
    /// agent (most manage an application); the others on nothing.
    pub fn default_dependency_kinds(&self) -> &'static [&'static str] {
        match self {
            ResourceKind::Exec(_) | ResourceKind::Ocf(_) => &["fip", "disk"],
            ResourceKind::Fip(_) | ResourceKind::Disk(_) => &[],
        }
    }
}
