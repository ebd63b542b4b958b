//! `fip` monitor settings (the product's floating IP monitor): whether the
//! link of the address's interface counts too. The floating IP resource is
//! the monitor's `target`. The probe is in the shell.

use serde::{Deserialize, Serialize};

use crate::problems::Problems;

/// `Fip()` or `Fip(check_link: true)`; the floating IP resource is the
/// monitor's `target`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename = "FipMonitorConfig")]
pub struct FipMonitorConfig {
    /// Also turn Error when the link of the address's interface is down
    /// (interface set down, no carrier), judged as the `link` monitor does.
    #[serde(default)]
    pub check_link: bool,
}

impl FipMonitorConfig {
    /// Nothing to check here: the target (a fip resource) is checked with
    /// the monitor's common settings.
    pub fn validate(&self, _path: &str, _problems: &mut Problems) {}
}
