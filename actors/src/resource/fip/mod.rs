//! Floating IP resource: adds an IPv4 address to an interface through netlink,
//! announces it with gratuitous ARP, and removes it on deactivation.

pub mod config;
pub mod driver;

pub use config::FipConfig;
