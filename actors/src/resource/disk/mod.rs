//! Disk resource: a filesystem of a shared block device, checked (fsck)
//! and mounted where the group runs, unmounted (its users ended first)
//! where it stops. [`mounts`]: what is mounted where; [`users`]: the
//! processes that use a filesystem.

pub mod mounts;
pub mod users;
