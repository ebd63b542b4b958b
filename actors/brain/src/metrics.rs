//! `metrics: (listen: "127.0.0.1:9664")`: the daemon serves Prometheus
//! metrics over HTTP on that address (`/metrics`). Absent: no listener.
//! Its settings and checks; the shell serves them (`actors/src/metrics/`).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::config::ClusterConfig;
use crate::problems::Problems;

/// Where every server's daemon serves its metrics (each its own: the same
/// address on every server, such as a loopback or wildcard one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "Metrics")]
pub struct MetricsConfig {
    /// `IP:port` of the HTTP listener (`[IPv6]:port` for IPv6).
    pub listen: String,
}

impl MetricsConfig {
    /// The address, once [`validate`] has accepted it.
    pub fn address(&self) -> Option<SocketAddr> {
        self.listen.parse().ok()
    }
}

/// `metrics.listen` is an IP address and a port other than 0 (a name
/// would depend on the resolver at start, a port 0 on chance).
pub fn validate(config: &ClusterConfig, problems: &mut Problems) {
    let Some(m) = &config.metrics else { return };
    match m.address() {
        None => problems.push(
            "metrics.listen",
            format!(
                "\"{}\" is not an IP address and port (such as 127.0.0.1:9664 or [::1]:9664)",
                m.listen
            ),
        ),
        Some(a) if a.port() == 0 => {
            problems.push("metrics.listen", "port 0 is out of range (1-65535)")
        }
        Some(_) => {}
    }
}

/// The endpoint has no authentication: say so when it listens beyond
/// this machine.
pub fn warnings(config: &ClusterConfig) -> Vec<String> {
    match config.metrics.as_ref().and_then(|m| m.address()) {
        Some(a) if !a.ip().is_loopback() => vec![format!(
            "metrics.listen: {a} is reachable beyond this machine, and the metrics endpoint has no authentication (listen on 127.0.0.1, or keep the port behind a firewall)"
        )],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse;

    fn check(metrics: &str) -> Result<Vec<String>, Vec<String>> {
        let text = format!(
            "Cluster(name: \"t\", servers: [Server(name: \"a\", interconnects: [\"198.51.100.1\"])], {metrics})"
        );
        match parse("t.ron", &text) {
            Ok(c) => Ok(super::warnings(&c)),
            Err(problems) => Err(problems.iter().map(|p| p.to_string()).collect()),
        }
    }

    #[test]
    fn the_address_is_an_ip_and_a_port() {
        assert_eq!(check(""), Ok(vec![]));
        assert_eq!(check("metrics: (listen: \"127.0.0.1:9664\")"), Ok(vec![]));
        assert_eq!(check("metrics: (listen: \"[::1]:9664\")"), Ok(vec![]));
        for bad in [
            "localhost:9664",
            "127.0.0.1",
            "127.0.0.1:0",
            "127.0.0.1:65536",
        ] {
            let p = check(&format!("metrics: (listen: \"{bad}\")")).unwrap_err();
            assert!(
                p.len() == 1 && p[0].starts_with("metrics.listen: "),
                "{bad}: {p:?}"
            );
        }
    }

    #[test]
    fn beyond_loopback_is_a_warning() {
        for open in ["0.0.0.0:9664", "198.51.100.1:9664", "[::]:9664"] {
            let w = check(&format!("metrics: (listen: \"{open}\")")).unwrap();
            assert!(
                w.len() == 1 && w[0].contains("no authentication"),
                "{open}: {w:?}"
            );
        }
    }

    #[test]
    fn a_configuration_without_metrics_keeps_its_digest() {
        let c = parse(
            "t.ron",
            "Cluster(name: \"t\", servers: [Server(name: \"a\", interconnects: [\"198.51.100.1\"])])",
        )
        .unwrap();
        assert!(!ron::to_string(&c).unwrap().contains("metrics"));
    }
}
