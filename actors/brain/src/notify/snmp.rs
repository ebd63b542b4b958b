//! SNMP trap notifier settings (`alerts.snmp`): the alerts routed to it go
//! to SNMP managers as v2c traps. Pure: reading `community_file` and
//! sending are the shell's (`notify/snmp/` in `understudy-actors`). The
//! community is a secret: it never shows in a problem, a log or an alert.

use serde::{Deserialize, Serialize};

pub use super::mail::Secret;
use crate::problems::Problems;

/// The SNMP trap port.
pub const DEFAULT_PORT: u16 = 162;
/// The community without `community` or `community_file`.
pub const DEFAULT_COMMUNITY: &str = "public";
/// Longest community, bytes.
pub const MAX_COMMUNITY: usize = 255;
/// Most managers.
pub const MAX_MANAGERS: usize = 16;
/// The OID the traps' identifiers and variables hang under by default:
/// net-snmp's playground for local, unregistered MIB objects
/// (NET-SNMP-MIB::netSnmpPlaypen). A site with an enterprise number of its
/// own sets `enterprise`.
pub const DEFAULT_ENTERPRISE: &str = "1.3.6.1.4.1.8072.9999.9999";

/// `Snmp(managers: [Manager(address: "198.51.100.100")],
/// community_file: "/etc/understudy/snmp-community")`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "Snmp")]
pub struct SnmpConfig {
    /// Where the traps go (1-16).
    pub managers: Vec<Manager>,
    /// The community; prefer `community_file`. Neither: `public`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community: Option<Secret>,
    /// File holding the community on its first line, readable by its
    /// owner only (mode 0600 or 0400). Instead of `community`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community_file: Option<String>,
    /// The OID under which trap identifiers and variables are numbered
    /// (see [`TrapOids`]). Default [`DEFAULT_ENTERPRISE`].
    #[serde(default = "default_enterprise")]
    pub enterprise: String,
}

/// `Manager(address: "198.51.100.100", port: 162)`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "Manager")]
pub struct Manager {
    /// IP literal or host name (resolved when a trap is sent).
    pub address: String,
    /// Default 162.
    #[serde(default = "default_port")]
    pub port: u16,
}

fn default_port() -> u16 {
    DEFAULT_PORT
}
fn default_enterprise() -> String {
    DEFAULT_ENTERPRISE.into()
}

/// The numbering of one trap under the enterprise OID `E`:
/// - trap identifier (snmpTrapOID.0): `E.0.L`, L the alert's level
///   (1 info, 2 warning, 3 error);
/// - variables `E.1.N`: 1 cluster, 2 server, 3 module, 4 event id
///   (INTEGER), 5 level, 6 message, 7 time (RFC 3339), all OCTET STRINGs
///   but the event id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrapOids {
    pub enterprise: Vec<u32>,
}

impl TrapOids {
    pub fn new(enterprise: &str) -> Result<TrapOids, String> {
        parse_oid(enterprise).map(|enterprise| TrapOids { enterprise })
    }

    /// `E.0.level`
    pub fn trap(&self, level: u32) -> Vec<u32> {
        let mut o = self.enterprise.clone();
        o.extend([0, level]);
        o
    }

    /// `E.1.n`
    pub fn variable(&self, n: u32) -> Vec<u32> {
        let mut o = self.enterprise.clone();
        o.extend([1, n]);
        o
    }
}

/// A dotted OID such as `1.3.6.1.4.1.8072`: at least two arcs, the first
/// 0-2, the second below 40 under 0 and 1 (what BER can encode).
pub fn parse_oid(text: &str) -> Result<Vec<u32>, String> {
    let bad = || format!("\"{text}\" is not a dotted OID (such as {DEFAULT_ENTERPRISE})");
    let arcs: Vec<u32> = text
        .split('.')
        .map(|a| {
            if a.is_empty() || !a.bytes().all(|b| b.is_ascii_digit()) {
                None
            } else {
                a.parse().ok()
            }
        })
        .collect::<Option<_>>()
        .ok_or_else(bad)?;
    if arcs.len() < 2 || arcs.len() > 100 || arcs[0] > 2 || (arcs[0] < 2 && arcs[1] >= 40) {
        return Err(bad());
    }
    Ok(arcs)
}

impl SnmpConfig {
    pub fn validate(&self, path: &str, problems: &mut Problems) {
        if self.managers.is_empty() || self.managers.len() > MAX_MANAGERS {
            problems.push(
                format!("{path}.managers"),
                format!("give 1-{MAX_MANAGERS} managers"),
            );
        }
        for (i, m) in self.managers.iter().enumerate() {
            crate::host::validate_host(
                &format!("{path}.managers[{i}].address"),
                &m.address,
                problems,
            );
            crate::host::validate_port(&format!("{path}.managers[{i}].port"), m.port, problems);
        }
        // Never quote the community, not even in part.
        if let Some(c) = &self.community {
            if let Err(e) = check_community(c.expose()) {
                problems.push(format!("{path}.community"), e);
            }
        }
        if let Some(file) = &self.community_file {
            if file.trim().is_empty() {
                problems.push(format!("{path}.community_file"), "must not be empty");
            }
            if self.community.is_some() {
                problems.push(
                    format!("{path}.community_file"),
                    "give either community or community_file, not both",
                );
            }
        }
        if let Err(e) = parse_oid(&self.enterprise) {
            problems.push(format!("{path}.enterprise"), e);
        }
    }
}

/// Whether a community may be used (says why not without quoting it).
pub fn check_community(c: &str) -> Result<(), String> {
    if c.is_empty() || c.len() > MAX_COMMUNITY {
        return Err(format!("must be 1-{MAX_COMMUNITY} bytes"));
    }
    if c.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(c: &SnmpConfig) -> Vec<String> {
        let mut p = Problems::default();
        c.validate("alerts.snmp", &mut p);
        p.into_vec().into_iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn settings_and_their_problems() {
        let c: SnmpConfig =
            ron::from_str(r#"Snmp(managers: [Manager(address: "198.51.100.100")])"#).unwrap();
        assert_eq!(c.managers[0].port, 162);
        assert_eq!(c.enterprise, DEFAULT_ENTERPRISE);
        assert!(problems(&c).is_empty(), "{:?}", problems(&c));
        // Absent optional fields stay out of the canonical form.
        let text = ron::to_string(&c).unwrap();
        assert!(!text.contains("community"), "{text}");

        let bad = SnmpConfig {
            managers: vec![Manager {
                address: "no such host!".into(),
                port: 0,
            }],
            community: Some(Secret::new("s3cret\n")),
            community_file: Some("/etc/c".into()),
            enterprise: "1.3.x".into(),
        };
        let p = problems(&bad);
        assert_eq!(p.len(), 5, "{p:?}");
        assert!(p.iter().all(|l| !l.contains("s3cret")), "{p:?}");
        let none = SnmpConfig {
            managers: vec![],
            ..c
        };
        assert_eq!(problems(&none).len(), 1);
    }

    #[test]
    fn oids() {
        assert_eq!(parse_oid("1.3.6.1").unwrap(), [1, 3, 6, 1]);
        for bad in ["", "1", "3.1", "1.40", "1..3", "1.3.-1", "1.3.99999999999"] {
            assert!(parse_oid(bad).is_err(), "{bad:?}");
        }
        let o = TrapOids::new("1.3.6.1.4.1.8072.9999.9999").unwrap();
        assert_eq!(o.trap(3), [1, 3, 6, 1, 4, 1, 8072, 9999, 9999, 0, 3]);
        assert_eq!(o.variable(6), [1, 3, 6, 1, 4, 1, 8072, 9999, 9999, 1, 6]);
    }
}
