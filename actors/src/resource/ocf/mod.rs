//! ocf resource: an OCF resource agent run with `OCF_ROOT` and
//! `OCF_RESKEY_*` (see `understudy_brain::resource::ocf`).

pub mod driver;

/// The ocf settings live in the brain crate.
pub use understudy_brain::resource::ocf as config;

pub use config::OcfConfig;
