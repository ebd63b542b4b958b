//! exec resource: start and stop scripts with the CLP_* environment.

pub mod config;

pub use config::{ExecConfig, StartMode};
