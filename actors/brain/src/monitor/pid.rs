//! `pid` monitor settings: none of its own. The probe is in the shell.

use serde::{Deserialize, Serialize};

use crate::problems::Problems;

/// The pid monitor has no settings of its own: its target resource (the
/// monitor's `target`, an exec resource started asynchronously) says which
/// process to watch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename = "PidConfig")]
pub struct PidConfig {}

impl PidConfig {
    pub fn validate(&self, _path: &str, _problems: &mut Problems) {}
}
