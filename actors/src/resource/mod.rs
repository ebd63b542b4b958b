//! Group resource kinds. Each kind has its own folder holding its driver
//! (I/O); the kinds' settings and [`ResourceKind`], which registers them, are
//! pure and live in the brain crate (`understudy_brain::resource`).
//! [`owned`] keeps the records of what the drivers hold on the machine.

pub mod actor;
pub mod disk;
pub mod exec;
pub mod fip;
pub mod ocf;
pub mod owned;

pub use understudy_brain::resource::ResourceKind;
