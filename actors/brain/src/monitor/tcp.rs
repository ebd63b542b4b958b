//! `tcp` monitor settings: the host and port a TCP connection must reach.
//! Also the default host of the TCP-based kinds (`http`, `smtp`). The probe
//! is in the shell.

use serde::{Deserialize, Serialize};

use crate::host::{validate_host, validate_port};
use crate::problems::Problems;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename = "TcpConfig")]
pub struct TcpConfig {
    /// Address (IPv4 or IPv6 literal) or host name to connect to. A name is
    /// resolved at each check. Default `127.0.0.1`.
    #[serde(default = "default_host")]
    pub host: String,
    /// Port to connect to (1-65535); required.
    pub port: u16,
}

/// `127.0.0.1`, the default host of the TCP-based kinds.
pub(super) fn default_host() -> String {
    "127.0.0.1".into()
}

impl TcpConfig {
    pub fn validate(&self, path: &str, problems: &mut Problems) {
        validate_host(&format!("{path}.host"), &self.host, problems);
        validate_port(&format!("{path}.port"), self.port, problems);
    }
}

/// Parses a cluster configuration with one monitor `w` of `kind` (RON, as
/// in a config file) and answers the kind, or the problems found.
#[cfg(test)]
pub(super) fn parse_kind(kind: &str) -> Result<super::MonitorKind, Vec<String>> {
    let text = format!(
        r#"Cluster(name: "c", servers: [Server(name: "s1")],
           groups: [Group(name: "web", resources: [])],
           monitors: [Monitor(name: "w", kind: {kind}, recovery: (target: Group("web")))])"#
    );
    match crate::config::parse("c.ron", &text) {
        Ok(mut c) => Ok(c.monitors.remove(0).kind),
        Err(p) => Err(p.iter().map(|p| p.to_string()).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(host: &str, port: u16) -> TcpConfig {
        TcpConfig {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn parses_with_defaults() {
        let c: TcpConfig = ron::from_str("(port: 22)").unwrap();
        assert_eq!(c, config("127.0.0.1", 22));
        let c: TcpConfig = ron::from_str("TcpConfig(host: \"db.example\", port: 5432)").unwrap();
        assert_eq!(c, config("db.example", 5432));
        assert!(ron::from_str::<TcpConfig>("(host: \"h\")").is_err());
        assert!(ron::from_str::<TcpConfig>("(port: 70000)").is_err());

        assert_eq!(
            parse_kind("Tcp(port: 5432)"),
            Ok(super::super::MonitorKind::Tcp(config("127.0.0.1", 5432)))
        );
        assert_eq!(
            parse_kind("Tcp(host: \"a b\", port: 0)"),
            Err(vec![
                "monitors[w].kind.host: \"a b\" is neither an IP address nor a host name".into(),
                "monitors[w].kind.port: 0 is out of range (1-65535)".into(),
            ])
        );
    }

    #[test]
    fn validation() {
        let mut p = Problems::default();
        config("127.0.0.1", 80).validate("m", &mut p);
        config("::1", 80).validate("m", &mut p);
        config("[fe80::1]", 80).validate("m", &mut p);
        config("db-1.example.com", 80).validate("m", &mut p);
        assert!(p.is_empty(), "{p:?}");

        for host in ["", "a b", "-x.example", "a..b", "x:80", "http://x"] {
            let mut p = Problems::default();
            config(host, 80).validate("m", &mut p);
            assert_eq!(p.0.len(), 1, "{host:?}: {p:?}");
            assert_eq!(p.0[0].path, "m.host");
        }
        let mut p = Problems::default();
        config("127.0.0.1", 0).validate("m", &mut p);
        assert_eq!(p.0.len(), 1);
        assert_eq!(p.0[0].path, "m.port");
    }
}
