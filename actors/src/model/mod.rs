//! The pure model: everything the supervisor decides, with no I/O and no actix.

pub mod catalog;
pub mod config;
pub mod ladder;
pub mod placement;
pub mod plan;
pub mod problems;
pub mod state;
pub mod validate;
