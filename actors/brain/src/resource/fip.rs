//! Floating IP resource settings. Pure data plus validation; no I/O here.

use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

use crate::problems::Problems;

/// `Fip(address: "198.51.100.10/24", interface: Some("eth0"))`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "Fip")]
pub struct FipConfig {
    /// IPv4 address, optionally with a prefix length (`/24`); without one it is a /32.
    pub address: String,
    /// Interface to add the address to. When absent, the interface that already
    /// has an address in the same network as the floating IP is used.
    #[serde(default)]
    pub interface: Option<String>,
    /// Gratuitous ARP frames sent after the address is added (0-10).
    #[serde(default = "default_garp")]
    pub gratuitous_arp: u32,
    /// Refuse activation when another host already answers for the address.
    #[serde(default = "default_true")]
    pub duplicate_check: bool,
    /// How long the duplicate check listens for an ARP answer, in milliseconds (10-10000).
    #[serde(default = "default_dup_wait")]
    pub duplicate_check_ms: u32,
    /// When another host answers, how long to keep probing before refusing,
    /// in milliseconds (0-60000; 0 refuses at once). At a takeover the old
    /// owner's guardian is usually removing the address at that moment.
    #[serde(default = "default_dup_grace")]
    pub duplicate_grace_ms: u32,
}

fn default_garp() -> u32 {
    3
}
fn default_true() -> bool {
    true
}
fn default_dup_wait() -> u32 {
    1000
}
fn default_dup_grace() -> u32 {
    3000
}

/// Bounds of `duplicate_check_ms` (the driver clamps to the same).
pub const DUPLICATE_CHECK_MS: (u32, u32) = (10, 10_000);
/// Bounds of `duplicate_grace_ms` (the driver clamps to the same).
pub const DUPLICATE_GRACE_MS: (u32, u32) = (0, 60_000);

impl FipConfig {
    /// The address and prefix length; `None` when `address` does not parse.
    pub fn parsed(&self) -> Option<(Ipv4Addr, u8)> {
        parse_cidr(&self.address)
    }

    pub fn validate(&self, path: &str, problems: &mut Problems) {
        if self.parsed().is_none() {
            problems.push(
                format!("{path}.address"),
                format!(
                    "\"{}\" is not an IPv4 address with an optional /prefix (0-32)",
                    self.address
                ),
            );
        }
        if let Some(ifname) = &self.interface {
            if ifname.is_empty() || ifname.len() > 15 || ifname.contains(['/', ' ']) {
                problems.push(
                    format!("{path}.interface"),
                    format!("\"{ifname}\" is not a valid interface name (1-15 characters, no '/' or space)"),
                );
            }
        }
        problems.range(
            &format!("{path}.gratuitous_arp"),
            self.gratuitous_arp,
            0,
            10,
        );
        problems.range(
            &format!("{path}.duplicate_check_ms"),
            self.duplicate_check_ms,
            DUPLICATE_CHECK_MS.0,
            DUPLICATE_CHECK_MS.1,
        );
        problems.range(
            &format!("{path}.duplicate_grace_ms"),
            self.duplicate_grace_ms,
            DUPLICATE_GRACE_MS.0,
            DUPLICATE_GRACE_MS.1,
        );
    }
}

pub fn parse_cidr(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (ip, prefix) = match s.split_once('/') {
        Some((ip, p)) => (ip, p.parse::<u8>().ok().filter(|p| *p <= 32)?),
        None => (s, 32),
    };
    Some((ip.parse().ok()?, prefix))
}
