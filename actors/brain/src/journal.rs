//! The lines of the decision journal (written by the shell, read back by
//! `understudy simulate --replay`).

use serde::{Deserialize, Serialize};

use crate::cluster::Input;

/// One line of the journal.
// Written and read one at a time: the input's size costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Line {
    /// First line: whose brain, which configuration.
    Start {
        server: String,
        incarnation: u64,
        config_digest: String,
    },
    /// An input at `t_us` (µs on the brain's clock).
    Input { t_us: u64, input: Input },
    /// A decision taken at `t_us`, and what the brain knew then.
    Decision {
        t_us: u64,
        command: String,
        reason: String,
    },
    /// The file is full: inputs are no longer written.
    Full { t_us: u64 },
}
