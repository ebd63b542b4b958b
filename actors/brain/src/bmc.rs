//! A server's BMC (baseboard management controller), reached over IPMI
//! over LAN (RMCP+, cipher suite 3): the settings of the BMC heartbeat
//! path and of the forced stop by BMC. Pure: reading `password_file` and
//! the IPMI exchange are the shell's (`actors/src/bmc.rs`).
//!
//! A BMC answers while its host's OS hangs or is cut off, and knows whether
//! the chassis has power: the best evidence there is that a silent server
//! is really down. Each server polls its peers' BMCs (Get Chassis Status);
//! the answers are facts for the brain ([`crate::cluster::Input::Bmc`]).
//! The password never shows in `Debug` output, problems, alerts or logs:
//! it lives in a [`Secret`].

use serde::{Deserialize, Serialize};

use crate::config::ClusterConfig;
use crate::host::{validate_host, validate_port};
pub use crate::notify::mail::Secret;
use crate::problems::Problems;

/// IPMI over LAN's port (RMCP, UDP).
pub const DEFAULT_PORT: u16 = 623;
/// Default of `interval_ms`.
pub const DEFAULT_INTERVAL_MS: u32 = 1000;
/// Default of `timeout_ms`.
pub const DEFAULT_TIMEOUT_MS: u32 = 2000;
/// Longest IPMI user name, bytes (IPMI 2.0: 16).
pub const MAX_USER: usize = 16;
/// Longest IPMI password, bytes (IPMI 2.0: 20).
pub const MAX_PASSWORD: usize = 20;

/// `servers[].bmc`: the server's BMC, polled by every other server and
/// used by the forced stop `Bmc`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "Bmc")]
pub struct BmcConfig {
    /// The BMC's LAN address (IP or host name).
    pub address: String,
    /// UDP port of IPMI over LAN (default 623).
    #[serde(default = "default_port")]
    pub port: u16,
    /// IPMI user: User privilege is enough to poll; the forced stop needs
    /// Operator.
    pub user: String,
    /// The password in the configuration itself; prefer `password_file`.
    #[serde(default)]
    pub password: Option<Secret>,
    /// File holding the password on its first line, readable by its owner
    /// only (mode 0600 or 0400). Instead of `password`.
    #[serde(default)]
    pub password_file: Option<String>,
    /// Milliseconds between two polls of this BMC by each peer (100-60000).
    #[serde(default = "default_interval")]
    pub interval_ms: u32,
    /// A poll not answered within this is "unreachable" (100-60000, at
    /// most `interval_ms` x 10).
    #[serde(default = "default_timeout")]
    pub timeout_ms: u32,
}

fn default_port() -> u16 {
    DEFAULT_PORT
}
fn default_interval() -> u32 {
    DEFAULT_INTERVAL_MS
}
fn default_timeout() -> u32 {
    DEFAULT_TIMEOUT_MS
}

impl BmcConfig {
    /// `address:port`, for status and alerts (never the user or password).
    pub fn endpoint(&self) -> String {
        if self.address.contains(':') && !self.address.starts_with('[') {
            format!("[{}]:{}", self.address, self.port)
        } else {
            format!("{}:{}", self.address, self.port)
        }
    }
}

/// What a poll of a peer's BMC found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BmcReading {
    /// Get Chassis Status answered: the chassis has power.
    On,
    /// Get Chassis Status answered: the chassis has no power.
    Off,
    /// No answer within the timeout, or an error (why, never a secret).
    Unreachable(String),
}

impl BmcReading {
    pub fn as_str(&self) -> &'static str {
        match self {
            BmcReading::On => "on",
            BmcReading::Off => "off",
            BmcReading::Unreachable(_) => "unreachable",
        }
    }
}

pub fn validate(config: &ClusterConfig, problems: &mut Problems) {
    for (i, server) in config.servers.iter().enumerate() {
        let Some(b) = &server.bmc else {
            continue;
        };
        let path = format!("servers[{}].bmc", crate::validate::label(&server.name, i));
        validate_host(&format!("{path}.address"), &b.address, problems);
        validate_port(&format!("{path}.port"), b.port, problems);
        if b.user.is_empty() {
            problems.push(format!("{path}.user"), "must not be empty");
        } else if b.user.len() > MAX_USER {
            problems.push(
                format!("{path}.user"),
                format!("longer than {MAX_USER} bytes (IPMI's limit)"),
            );
        }
        if b.user.chars().any(char::is_control) {
            problems.push(
                format!("{path}.user"),
                "must not contain control characters",
            );
        }
        // Never quote the password, not even in part.
        if let Some(pw) = &b.password {
            if pw.expose().len() > MAX_PASSWORD {
                problems.push(
                    format!("{path}.password"),
                    format!("longer than {MAX_PASSWORD} bytes (IPMI's limit)"),
                );
            }
            if pw.expose().chars().any(char::is_control) {
                problems.push(
                    format!("{path}.password"),
                    "must not contain control characters",
                );
            }
        }
        match (&b.password, &b.password_file) {
            (Some(_), Some(_)) => problems.push(
                format!("{path}.password_file"),
                "give either password or password_file, not both",
            ),
            (None, None) => problems.push(
                format!("{path}.password"),
                "a BMC needs a password (or a password_file)",
            ),
            (None, Some(f)) if f.trim().is_empty() => {
                problems.push(format!("{path}.password_file"), "must not be empty")
            }
            _ => {}
        }
        problems.range(&format!("{path}.interval_ms"), b.interval_ms, 100, 60_000);
        problems.range(&format!("{path}.timeout_ms"), b.timeout_ms, 100, 60_000);
        if b.timeout_ms > b.interval_ms.saturating_mul(10) {
            problems.push(
                format!("{path}.timeout_ms"),
                format!(
                    "{} ms is more than 10 x interval_ms ({} ms): a dead BMC would be noticed long after the next poll was due",
                    b.timeout_ms, b.interval_ms
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse;

    fn cluster(bmc: &str) -> String {
        format!(
            r#"Cluster(name: "c", heartbeat: (key_file: "/k"), servers: [
                Server(name: "s1", interconnects: ["198.51.100.1"], bmc: {bmc}),
                Server(name: "s2", interconnects: ["198.51.100.2"])])"#
        )
    }

    fn problems(bmc: &str) -> Vec<String> {
        match parse("c.ron", &cluster(bmc)) {
            Ok(_) => Vec::new(),
            Err(p) => p.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn a_bmc_with_defaults() {
        let c = parse(
            "c.ron",
            &cluster(r#"(address: "192.0.2.1", user: "admin", password_file: "/etc/understudy/bmc1.pw")"#),
        )
        .expect("valid");
        let b = c.servers[0].bmc.as_ref().expect("bmc");
        assert_eq!(b.port, 623);
        assert_eq!(b.interval_ms, 1000);
        assert_eq!(b.timeout_ms, 2000);
        assert_eq!(b.endpoint(), "192.0.2.1:623");
        assert!(c.servers[1].bmc.is_none());
    }

    #[test]
    fn every_problem_names_its_field() {
        let p = problems(
            r#"(address: "", port: 0, user: "a-user-name-longer-than-16", interval_ms: 10, timeout_ms: 200000)"#,
        );
        let text = p.join("\n");
        for field in [
            "servers[s1].bmc.address",
            "servers[s1].bmc.port",
            "servers[s1].bmc.user",
            "servers[s1].bmc.password",
            "servers[s1].bmc.interval_ms",
            "servers[s1].bmc.timeout_ms",
        ] {
            assert!(text.contains(field), "{field} missing in:\n{text}");
        }
    }

    #[test]
    fn the_password_never_shows() {
        let p = problems(
            r#"(address: "192.0.2.1", user: "admin", password: "hunter2-and-much-too-long-for-ipmi", password_file: "/x")"#,
        );
        let text = p.join("\n");
        assert!(text.contains("servers[s1].bmc.password"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        let c = parse(
            "c.ron",
            &cluster(r#"(address: "192.0.2.1", user: "admin", password: "hunter2")"#),
        )
        .expect("valid");
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn unknown_fields_are_named() {
        let p = problems(r#"(address: "192.0.2.1", user: "a", password: "p", cipher: 17)"#);
        assert!(
            p.iter()
                .any(|l| l.contains("servers[s1].bmc.cipher") || l.contains("bmc.cipher")),
            "{p:?}"
        );
    }
}
