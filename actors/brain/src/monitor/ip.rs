//! `ip` monitor settings: the IPv4 addresses to ping and how long to wait
//! for replies. The probe is in the shell.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::problems::Problems;

/// Shortest and longest wait for replies, milliseconds.
pub const MIN_WAIT_MS: u32 = 100;
pub const MAX_WAIT_MS: u32 = 60_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename = "IpConfig")]
pub struct IpConfig {
    /// IPv4 addresses to ping (at least one). The check is Normal when any
    /// of them answers.
    pub addresses: Vec<String>,
    /// Milliseconds to wait for echo replies (100-60000). Default 1000. Keep
    /// it below the monitor's timeout, or a silent address turns into a
    /// timeout instead of "no answer".
    #[serde(default = "default_wait_ms")]
    pub wait_ms: u32,
}

fn default_wait_ms() -> u32 {
    1000
}

impl IpConfig {
    pub fn validate(&self, path: &str, problems: &mut Problems) {
        let field = format!("{path}.addresses");
        if self.addresses.is_empty() {
            problems.push(&field, "list at least one IPv4 address");
        }
        for (i, text) in self.addresses.iter().enumerate() {
            match parse_address(text) {
                Err(e) => problems.push(&field, e),
                Ok(_) if self.addresses[..i].contains(text) => {
                    problems.push(&field, format!("{text} is listed twice"))
                }
                Ok(_) => {}
            }
        }
        problems.range(
            &format!("{path}.wait_ms"),
            self.wait_ms,
            MIN_WAIT_MS,
            MAX_WAIT_MS,
        );
    }
}

/// An address that can answer a ping: a unicast IPv4 literal.
pub fn parse_address(text: &str) -> Result<Ipv4Addr, String> {
    let addr: Ipv4Addr = text
        .parse()
        .map_err(|_| format!("\"{text}\" is not an IPv4 address"))?;
    if addr.is_unspecified() || addr.is_broadcast() || addr.is_multicast() {
        return Err(format!("{addr} is not a host address"));
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(addresses: &[&str], wait_ms: u32) -> IpConfig {
        IpConfig {
            addresses: addresses.iter().map(|a| a.to_string()).collect(),
            wait_ms,
        }
    }

    #[test]
    fn parses_with_defaults() {
        let c: IpConfig = ron::from_str("(addresses: [\"198.51.100.1\"])").unwrap();
        assert_eq!(c, config(&["198.51.100.1"], 1000));
        assert!(ron::from_str::<IpConfig>("()").is_err());
        assert_eq!(
            crate::monitor::tcp::parse_kind(
                r#"Ip(addresses: ["198.51.100.1", "198.51.100.2"], wait_ms: 500)"#
            ),
            Ok(crate::monitor::MonitorKind::Ip(config(
                &["198.51.100.1", "198.51.100.2"],
                500
            )))
        );
        assert_eq!(
            crate::monitor::tcp::parse_kind(r#"Ip(addresses: [])"#),
            Err(vec![
                "monitors[w].kind.addresses: list at least one IPv4 address".into()
            ])
        );
    }

    #[test]
    fn validation() {
        let mut p = Problems::default();
        config(&["198.51.100.1", "203.0.113.9"], 100).validate("m", &mut p);
        config(&["127.0.0.1"], 60_000).validate("m", &mut p);
        assert!(p.is_empty(), "{p:?}");

        let mut p = Problems::default();
        config(&[], 99).validate("m", &mut p);
        let paths: Vec<&str> = p.0.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["m.addresses", "m.wait_ms"]);

        let mut p = Problems::default();
        let bad = [
            "host.example",
            "::1",
            "198.51.100",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "198.51.100.1",
            "198.51.100.1",
        ];
        config(&bad, 60_001).validate("m", &mut p);
        let messages: Vec<&str> = p.0.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "\"host.example\" is not an IPv4 address",
                "\"::1\" is not an IPv4 address",
                "\"198.51.100\" is not an IPv4 address",
                "0.0.0.0 is not a host address",
                "255.255.255.255 is not a host address",
                "224.0.0.1 is not a host address",
                "198.51.100.1 is listed twice",
                "60001 is out of range (100-60000)",
            ]
        );
    }
}
