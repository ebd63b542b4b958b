//! The pure model: everything the supervisor decides, with no I/O and no actix.
//! Modules already in the `understudy-brain` crate are re-exported here.

pub mod catalog;
pub mod config;
pub mod detection;
pub mod ladder;
pub mod membership;
pub mod monitoring;
pub mod placement;
pub mod plan;
pub mod recovery;
pub mod routing;
pub mod state;
pub mod validate;
pub mod validate_monitors;

pub use understudy_brain::{host, problems};
