//! The pure model: everything the supervisor decides, with no I/O and no actix.

pub mod config;
pub mod plan;
pub mod problems;
pub mod validate;
