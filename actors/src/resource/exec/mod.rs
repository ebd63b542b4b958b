//! exec resource: start and stop scripts with the CLP_* environment.

pub mod config;
pub mod driver;

pub use config::{ExecConfig, StartMode};
