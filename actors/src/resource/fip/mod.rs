//! Floating IP resource: adds an IPv4 address to an interface through netlink,
//! announces it with gratuitous ARP, and removes it on deactivation.

pub mod driver;

/// The floating IP settings live in the brain crate.
pub use understudy_brain::resource::fip as config;

pub use config::FipConfig;
