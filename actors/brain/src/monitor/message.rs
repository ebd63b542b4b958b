//! `message` monitor settings (message receive): the category and keyword
//! of the messages that turn the monitor Error. The probe is in the shell.
//!
//! Category [`BMC_CATEGORY`] is fed by SNMP traps as well: its keyword is
//! the address the server receives its BMC's traps on, `IP[:port]` (port
//! [`DEFAULT_TRAP_PORT`] when left out), see [`MessageConfig::trap_endpoint`]
//! and `crate::traps`.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::problems::Problems;

/// Longest category, bytes (as in the product).
pub const MAX_CATEGORY: usize = 32;
/// Longest keyword, bytes.
pub const MAX_KEYWORD: usize = 1023;
/// The category of the notices a server's BMC sends as SNMP traps.
pub const BMC_CATEGORY: &str = "BMCNOTICE";
/// The port of a BMC notice keyword without one (the SNMP trap port).
pub const DEFAULT_TRAP_PORT: u16 = 162;
/// Longest SNMP community accepted in the settings, bytes.
pub const MAX_COMMUNITY: usize = 255;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename = "MessageConfig")]
pub struct MessageConfig {
    pub category: String,
    /// Empty: any keyword of the category matches.
    #[serde(default)]
    pub keyword: String,
    /// Category `BMCNOTICE` only: the SNMP community a trap must carry to
    /// count. Absent: any community.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community: Option<String>,
}

impl MessageConfig {
    pub fn validate(&self, path: &str, problems: &mut Problems) {
        if self.category.is_empty() {
            problems.push(format!("{path}.category"), "must not be empty");
        }
        if self.category.len() > MAX_CATEGORY {
            problems.push(
                format!("{path}.category"),
                format!("longer than {MAX_CATEGORY} bytes"),
            );
        }
        if self.keyword.len() > MAX_KEYWORD {
            problems.push(
                format!("{path}.keyword"),
                format!("longer than {MAX_KEYWORD} bytes"),
            );
        }
        if let Some(c) = &self.community {
            if c.is_empty() || c.len() > MAX_COMMUNITY {
                problems.push(
                    format!("{path}.community"),
                    format!("must be 1-{MAX_COMMUNITY} bytes"),
                );
            }
            if self.category != BMC_CATEGORY {
                problems.push(
                    format!("{path}.community"),
                    format!("only a {BMC_CATEGORY} monitor receives SNMP traps"),
                );
            }
        }
    }

    /// The address and port this monitor's traps arrive on: `None` unless
    /// the category is [`BMC_CATEGORY`] and the keyword is set; an error
    /// when the keyword is not `IP[:port]`.
    pub fn trap_endpoint(&self) -> Option<Result<SocketAddr, String>> {
        (self.category == BMC_CATEGORY && !self.keyword.is_empty())
            .then(|| parse_trap_keyword(&self.keyword))
    }

    /// Whether a trap with `community` is for this monitor (any, when no
    /// community is configured). The comparison takes the same time for
    /// every community of one length.
    pub fn community_accepts(&self, community: &[u8]) -> bool {
        match &self.community {
            None => true,
            Some(want) => {
                let want = want.as_bytes();
                want.len() == community.len()
                    && want
                        .iter()
                        .zip(community)
                        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                        == 0
            }
        }
    }

    /// Whether a message of `category` and `keyword` is for this monitor.
    pub fn matches(&self, category: &str, keyword: &str) -> bool {
        self.category == category && (self.keyword.is_empty() || self.keyword == keyword)
    }
}

/// A BMC notice keyword: `IPv4`, `IPv4:port`, `IPv6`, `[IPv6]` or
/// `[IPv6]:port`; the port is [`DEFAULT_TRAP_PORT`] when left out, and 1-65535.
pub fn parse_trap_keyword(keyword: &str) -> Result<SocketAddr, String> {
    let bad = || {
        format!("keyword \"{keyword}\" is not IP[:port] (such as 198.51.100.1 or 198.51.100.1:162)")
    };
    let k = keyword.trim();
    if k != keyword {
        return Err(bad());
    }
    if let Ok(ip) = k.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, DEFAULT_TRAP_PORT));
    }
    if let Some(inner) = k.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        let ip: std::net::Ipv6Addr = inner.parse().map_err(|_| bad())?;
        return Ok(SocketAddr::new(IpAddr::V6(ip), DEFAULT_TRAP_PORT));
    }
    let addr: SocketAddr = k.parse().map_err(|_| bad())?;
    if addr.port() == 0 {
        return Err(format!(
            "keyword \"{keyword}\": port 0 is out of range (1-65535)"
        ));
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trap_keywords() {
        let ok = |k: &str| parse_trap_keyword(k).unwrap().to_string();
        assert_eq!(ok("198.51.100.1"), "198.51.100.1:162");
        assert_eq!(ok("198.51.100.1:1162"), "198.51.100.1:1162");
        assert_eq!(ok("2001:db8::1"), "[2001:db8::1]:162");
        assert_eq!(ok("[2001:db8::1]"), "[2001:db8::1]:162");
        assert_eq!(ok("[2001:db8::1]:1162"), "[2001:db8::1]:1162");
        for bad in [
            "",
            "bmc1",
            "198.51.100.1:",
            "198.51.100.1:0",
            "198.51.100.1:70000",
            " 198.51.100.1",
            "198.51.100.256",
            "[198.51.100.1]",
        ] {
            assert!(parse_trap_keyword(bad).is_err(), "{bad:?}");
        }
        let c = |category: &str, keyword: &str| MessageConfig {
            category: category.into(),
            keyword: keyword.into(),
            community: None,
        };
        assert!(c("BMCNOTICE", "").trap_endpoint().is_none());
        assert!(c("NIC", "198.51.100.1").trap_endpoint().is_none());
        assert!(c("BMCNOTICE", "x").trap_endpoint().unwrap().is_err());
    }

    #[test]
    fn community_check() {
        let mut c = MessageConfig {
            category: "BMCNOTICE".into(),
            keyword: "198.51.100.1".into(),
            community: None,
        };
        assert!(c.community_accepts(b"anything"));
        c.community = Some("s3cret".into());
        assert!(c.community_accepts(b"s3cret"));
        assert!(!c.community_accepts(b"s3cre"));
        assert!(!c.community_accepts(b"s3creT"));
        assert!(!c.community_accepts(b""));
        let p = crate::monitor::testing::problems_of(|path, p| c.validate(path, p));
        assert!(p.is_empty(), "{p:?}");
        c.community = Some(String::new());
        c.category = "NIC".into();
        let p = crate::monitor::testing::problems_of(|path, p| c.validate(path, p));
        assert_eq!(p.len(), 2, "{p:?}");
    }

    #[test]
    fn matching() {
        let c = MessageConfig {
            category: "BMCNOTICE".into(),
            keyword: "198.51.100.5".into(),
            community: None,
        };
        assert!(c.matches("BMCNOTICE", "198.51.100.5"));
        assert!(!c.matches("BMCNOTICE", "198.51.100.6"));
        assert!(!c.matches("NIC", "198.51.100.5"));
        let any = MessageConfig {
            category: "NIC".into(),
            keyword: String::new(),
            community: None,
        };
        assert!(any.matches("NIC", "eth0"));
    }
}
