//! Disk resource: a filesystem of a shared block device, checked (fsck)
//! and mounted where the group runs, unmounted (its users ended first)
//! where it stops. [`mounts`]: what is mounted where; [`users`]: the
//! processes that use a filesystem; [`driver`]: activation and
//! deactivation.

pub mod driver;
pub mod mounts;
pub mod users;

/// The disk settings live in the brain crate.
pub use understudy_brain::resource::disk as config;

pub use config::DiskConfig;
