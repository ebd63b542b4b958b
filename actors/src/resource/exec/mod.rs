//! exec resource: start and stop scripts with the CLP_* environment.

pub mod driver;

/// The exec settings live in the brain crate.
pub use understudy_brain::resource::exec as config;

pub use config::{ExecConfig, StartMode};
