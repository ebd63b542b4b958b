//! Group resource kinds. Each kind has its own folder holding its config
//! struct (pure) next to its driver (I/O); [`ResourceKind`] registers them.
//! [`owned`] keeps the records of what the drivers hold on the machine.

pub mod actor;
pub mod exec;
pub mod fip;
pub mod owned;

use serde::{Deserialize, Serialize};

use crate::model::problems::Problems;

/// Every group resource kind, with its settings. Adding a kind means adding a
/// folder and a variant here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResourceKind {
    Exec(exec::ExecConfig),
    Fip(fip::FipConfig),
}

impl ResourceKind {
    /// Short type name as shown in status (`exec`, `fip`).
    pub fn type_name(&self) -> &'static str {
        match self {
            ResourceKind::Exec(_) => "exec",
            ResourceKind::Fip(_) => "fip",
        }
    }

    pub fn validate(&self, path: &str, problems: &mut Problems) {
        match self {
            ResourceKind::Exec(c) => c.validate(path, problems),
            ResourceKind::Fip(c) => c.validate(path, problems),
        }
    }

    /// Kinds this kind depends on when the resource does not list its
    /// dependencies explicitly.
    pub fn default_dependency_kinds(&self) -> &'static [&'static str] {
        match self {
            ResourceKind::Exec(_) => &["fip"],
            ResourceKind::Fip(_) => &[],
        }
    }
}
