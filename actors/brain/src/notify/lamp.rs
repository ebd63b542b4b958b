//! Warning lamp settings: the cluster switch and one lamp per server.
//! Pure data plus validation; no I/O here.
//!
//! ```ron
//! Lamps(
//!     enabled: true,
//!     lamps: [
//!         Lamp(server: "s1", address: "192.0.2.51", protocol: PnsNh),
//!         Lamp(server: "s2", address: "lamp-s2.example", protocol: Rsh, user: "patlite"),
//!     ],
//! )
//! ```

use crate::host::{parse_ip, validate_host};
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::problems::Problems;

/// Longest rsh login name we send. Classic rshd reads user names into small
/// fixed buffers; 32 bytes is what Linux allows for a login name.
pub const MAX_USER_LEN: usize = 32;

/// The cluster's "use network warning lamps" switch and the lamps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "Lamps")]
pub struct LampConfig {
    /// Drive the lamps at all. Off by default: the lamp list may be kept
    /// while the lamps are out of service.
    #[serde(default)]
    pub enabled: bool,
    /// At most one lamp per server.
    #[serde(default)]
    pub lamps: Vec<Lamp>,
}

/// The warning lamp that shows one server's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "Lamp")]
pub struct Lamp {
    /// The server whose state the lamp shows.
    pub server: String,
    /// IP address (v4 or v6) or host name of the lamp. A name is resolved
    /// at each command. Several servers may share a lamp (not recommended).
    pub address: String,
    pub protocol: LampProtocol,
    /// TCP port; default by protocol (PNS 10000, HTTP 80, rsh 514).
    #[serde(default)]
    pub port: Option<u16>,
    /// rsh only: the login name sent to the lamp (default: the name of the
    /// user the daemon runs as).
    #[serde(default)]
    pub user: Option<String>,
}

/// How a lamp is driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LampProtocol {
    /// PATLITE PNS binary frames, NH series (product category "XX").
    PnsNh,
    /// PATLITE PNS binary frames, LA6 (product category "AB").
    PnsLa6,
    /// `GET /api/control?alert=...` (LA6-POE and other HTTP-capable models).
    Http,
    /// `alert RYGBCZ` over the BSD rsh protocol (NH series).
    Rsh,
}

impl LampProtocol {
    pub fn default_port(self) -> u16 {
        match self {
            LampProtocol::PnsNh | LampProtocol::PnsLa6 => 10000,
            LampProtocol::Http => 80,
            LampProtocol::Rsh => 514,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LampProtocol::PnsNh => "PnsNh",
            LampProtocol::PnsLa6 => "PnsLa6",
            LampProtocol::Http => "Http",
            LampProtocol::Rsh => "Rsh",
        }
    }
}

impl fmt::Display for LampProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Lamp {
    /// The port in use: the configured one or the protocol's default.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(self.protocol.default_port())
    }

    /// The address as IP literal, if it is one (IPv6 with or without
    /// brackets).
    pub fn ip(&self) -> Option<IpAddr> {
        parse_ip(&self.address)
    }

    /// `address:port`, IPv6 in brackets: how alerts name the lamp.
    pub fn label(&self) -> String {
        match self.ip() {
            Some(ip) => SocketAddr::new(ip, self.port()).to_string(),
            None => format!("{}:{}", self.address, self.port()),
        }
    }

    pub fn validate(&self, path: &str, problems: &mut Problems) {
        if self.server.trim().is_empty() {
            problems.push(format!("{path}.server"), "must not be empty");
        }
        validate_host(&format!("{path}.address"), &self.address, problems);
        if self.port == Some(0) {
            problems.push(format!("{path}.port"), "0 is out of range (1-65535)");
        }
        if let Some(user) = &self.user {
            let upath = format!("{path}.user");
            if self.protocol != LampProtocol::Rsh {
                problems.push(
                    upath,
                    format!(
                        "only the Rsh protocol uses a login name (this lamp uses {})",
                        self.protocol
                    ),
                );
            } else if user.is_empty() {
                problems.push(upath, "must not be empty");
            } else if user.len() > MAX_USER_LEN {
                problems.push(upath, format!("longer than {MAX_USER_LEN} bytes"));
            } else if !user.bytes().all(|b| b.is_ascii_graphic()) {
                // A NUL would end the field early on the wire; blanks and
                // other characters are no login name.
                problems.push(upath, "only printable ASCII without blanks is allowed");
            }
        }
    }
}

impl LampConfig {
    /// Checks every lamp; a second lamp for the same server is a problem.
    /// Whether the servers exist is for the caller to check against the
    /// server list (see [`LampConfig::servers`]).
    pub fn validate(&self, path: &str, problems: &mut Problems) {
        let mut first: HashMap<&str, usize> = HashMap::new();
        for (i, lamp) in self.lamps.iter().enumerate() {
            let lpath = lamp_path(path, lamp, i);
            lamp.validate(&lpath, problems);
            if lamp.server.trim().is_empty() {
                continue;
            }
            if let Some(prev) = first.get(lamp.server.as_str()) {
                problems.push(
                    format!("{lpath}.server"),
                    format!(
                        "server \"{}\" already has a lamp ({path}.lamps[{prev}]); one lamp per server",
                        lamp.server
                    ),
                );
            } else {
                first.insert(&lamp.server, i);
            }
        }
    }

    /// Every server name the lamps refer to, with the field path of the
    /// reference (`lamps[s1].server`), in configuration order.
    pub fn servers<'a>(&'a self, path: &str) -> Vec<(String, &'a str)> {
        self.lamps
            .iter()
            .enumerate()
            .map(|(i, lamp)| {
                (
                    format!("{}.server", lamp_path(path, lamp, i)),
                    lamp.server.as_str(),
                )
            })
            .collect()
    }

    /// The lamp of `server`, if it has one (the first, should the
    /// configuration list several).
    pub fn lamp_of(&self, server: &str) -> Option<&Lamp> {
        self.lamps.iter().find(|l| l.server == server)
    }
}

/// `PATH.lamps[SERVER]`, or the index when the server name is empty.
fn lamp_path(path: &str, lamp: &Lamp, index: usize) -> String {
    let label = if lamp.server.is_empty() {
        index.to_string()
    } else {
        lamp.server.clone()
    };
    if path.is_empty() {
        format!("lamps[{label}]")
    } else {
        format!("{path}.lamps[{label}]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> LampConfig {
        let options = ron::Options::default()
            .with_default_extension(ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES)
            .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
        options.from_str(text).unwrap()
    }

    fn problems(config: &LampConfig) -> Vec<String> {
        let mut p = Problems::default();
        config.validate("alerts.lamp", &mut p);
        p.into_vec().iter().map(|p| p.to_string()).collect()
    }

    fn lamp(server: &str, address: &str, protocol: LampProtocol) -> Lamp {
        Lamp {
            server: server.into(),
            address: address.into(),
            protocol,
            port: None,
            user: None,
        }
    }

    #[test]
    fn parses_with_defaults() {
        let c = parse("Lamps()");
        assert_eq!(c, LampConfig::default());
        assert!(!c.enabled);
        let c = parse(
            r#"Lamps(enabled: true, lamps: [
                Lamp(server: "s1", address: "192.0.2.51", protocol: PnsNh),
                Lamp(server: "s2", address: "::1", protocol: Rsh, port: 1514, user: "patlite"),
            ])"#,
        );
        assert!(c.enabled);
        assert_eq!(c.lamps[0], lamp("s1", "192.0.2.51", LampProtocol::PnsNh));
        assert_eq!(c.lamps[1].port, Some(1514));
        assert_eq!(c.lamps[1].user.as_deref(), Some("patlite"));
        assert!(problems(&c).is_empty(), "{:?}", problems(&c));
    }

    #[test]
    fn ports_and_labels() {
        assert_eq!(lamp("s", "192.0.2.1", LampProtocol::PnsNh).port(), 10000);
        assert_eq!(lamp("s", "192.0.2.1", LampProtocol::PnsLa6).port(), 10000);
        assert_eq!(lamp("s", "192.0.2.1", LampProtocol::Http).port(), 80);
        assert_eq!(lamp("s", "192.0.2.1", LampProtocol::Rsh).port(), 514);
        let mut l = lamp("s", "[2001:db8::1]", LampProtocol::Http);
        assert_eq!(l.label(), "[2001:db8::1]:80");
        l.port = Some(8080);
        l.address = "lamp.example".into();
        assert_eq!(l.label(), "lamp.example:8080");
    }

    #[test]
    fn validation_paths() {
        let mut bad_user = lamp("s2", "192.0.2.2", LampProtocol::Http);
        bad_user.user = Some("x".into());
        let mut zero_port = lamp("s3", "bad host!", LampProtocol::Rsh);
        zero_port.port = Some(0);
        zero_port.user = Some("two words".into());
        let c = LampConfig {
            enabled: true,
            lamps: vec![
                lamp("s1", "192.0.2.1", LampProtocol::PnsNh),
                bad_user,
                zero_port,
                lamp("s1", "192.0.2.9", LampProtocol::PnsLa6),
                lamp("", "", LampProtocol::PnsLa6),
            ],
        };
        assert_eq!(
            problems(&c),
            vec![
                "alerts.lamp.lamps[s2].user: only the Rsh protocol uses a login name (this lamp uses Http)",
                "alerts.lamp.lamps[s3].address: \"bad host!\" is neither an IP address nor a host name",
                "alerts.lamp.lamps[s3].port: 0 is out of range (1-65535)",
                "alerts.lamp.lamps[s3].user: only printable ASCII without blanks is allowed",
                "alerts.lamp.lamps[s1].server: server \"s1\" already has a lamp (alerts.lamp.lamps[0]); one lamp per server",
                "alerts.lamp.lamps[4].server: must not be empty",
                "alerts.lamp.lamps[4].address: must not be empty",
            ]
        );
    }

    #[test]
    fn user_limits() {
        let with_user = |server: &str, user: String| Lamp {
            user: Some(user),
            ..lamp(server, "192.0.2.1", LampProtocol::Rsh)
        };
        let c = LampConfig {
            enabled: true,
            lamps: vec![
                with_user("s1", String::new()),
                with_user("s2", "u".repeat(MAX_USER_LEN + 1)),
                with_user("s3", "a\0b".into()),
                with_user("s4", "u".repeat(MAX_USER_LEN)),
            ],
        };
        assert_eq!(
            problems(&c),
            vec![
                "alerts.lamp.lamps[s1].user: must not be empty",
                "alerts.lamp.lamps[s2].user: longer than 32 bytes",
                "alerts.lamp.lamps[s3].user: only printable ASCII without blanks is allowed",
            ]
        );
    }

    #[test]
    fn server_references() {
        let c = LampConfig {
            enabled: false,
            lamps: vec![
                lamp("s1", "192.0.2.1", LampProtocol::PnsNh),
                lamp("", "192.0.2.2", LampProtocol::PnsNh),
                lamp("s9", "192.0.2.3", LampProtocol::Http),
            ],
        };
        assert_eq!(
            c.servers("lamp"),
            vec![
                ("lamp.lamps[s1].server".to_string(), "s1"),
                ("lamp.lamps[1].server".to_string(), ""),
                ("lamp.lamps[s9].server".to_string(), "s9"),
            ]
        );
        assert_eq!(c.lamp_of("s9").unwrap().address, "192.0.2.3");
        assert!(c.lamp_of("s2").is_none());
    }
}
