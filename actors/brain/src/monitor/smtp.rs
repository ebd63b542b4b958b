//! `smtp` monitor settings: the SMTP server that must greet and answer
//! `NOOP`. The probe is in the shell.

use serde::{Deserialize, Serialize};

use super::tcp::default_host;
use crate::host::{validate_host, validate_port};
use crate::problems::Problems;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename = "SmtpConfig")]
pub struct SmtpConfig {
    /// Address (IPv4 or IPv6 literal) or host name of the server. A name is
    /// resolved at each check. Default `127.0.0.1`.
    #[serde(default = "default_host")]
    pub host: String,
    /// Port of the server (1-65535). Default 25.
    #[serde(default = "default_port")]
    pub port: u16,
}

fn default_port() -> u16 {
    25
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: default_host(),
            port: default_port(),
        }
    }
}

impl SmtpConfig {
    pub fn validate(&self, path: &str, problems: &mut Problems) {
        validate_host(&format!("{path}.host"), &self.host, problems);
        validate_port(&format!("{path}.port"), self.port, problems);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_defaults() {
        let c: SmtpConfig = ron::from_str("()").unwrap();
        assert_eq!(c, SmtpConfig::default());
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", 25));
        let c: SmtpConfig = ron::from_str("(host: \"mail.example\", port: 587)").unwrap();
        assert_eq!((c.host.as_str(), c.port), ("mail.example", 587));
        assert_eq!(
            crate::monitor::tcp::parse_kind(r#"Smtp(host: "mail.example")"#),
            Ok(crate::monitor::MonitorKind::Smtp(SmtpConfig {
                host: "mail.example".into(),
                port: 25
            }))
        );
    }

    #[test]
    fn validation() {
        let mut p = Problems::default();
        SmtpConfig::default().validate("m", &mut p);
        assert!(p.is_empty());
        SmtpConfig {
            host: "bad host".into(),
            port: 0,
        }
        .validate("m", &mut p);
        let paths: Vec<&str> = p.0.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["m.host", "m.port"]);
    }
}
