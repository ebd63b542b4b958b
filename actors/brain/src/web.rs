//! `web: (listen: "127.0.0.1:9665", password_file: "/etc/understudy/web.password")`:
//! the daemon serves its status page over HTTP on that address. Absent: no
//! page. Its settings and checks; the shell serves it
//! (`actors/src/status_page/`).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::config::ClusterConfig;
use crate::problems::Problems;

/// Where every server's daemon serves its status page, and who may do
/// more than read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "Web")]
pub struct WebConfig {
    /// `IP:port` of the HTTP listener (`[IPv6]:port` for IPv6). It may be
    /// `metrics.listen` too: then one listener serves both.
    pub listen: String,
    /// The administrator's password (HTTP Basic, user name
    /// [`ADMIN_USER`]), the first line of this file, which only its owner
    /// may read. Without it the page is read-only, and it may listen on a
    /// loopback address only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
}

/// The user name HTTP Basic authentication expects.
pub const ADMIN_USER: &str = "admin";

impl WebConfig {
    /// The address, once [`validate`] has accepted it.
    pub fn address(&self) -> Option<SocketAddr> {
        self.listen.parse().ok()
    }

    /// Whether every request must authenticate: the page is reachable
    /// beyond this machine.
    pub fn beyond_loopback(&self) -> bool {
        self.address().is_some_and(|a| !a.ip().is_loopback())
    }
}

/// `web.listen` is an IP address and a port other than 0; beyond loopback
/// it needs `web.password_file` (nobody else may read the cluster's state
/// or act on it).
pub fn validate(config: &ClusterConfig, problems: &mut Problems) {
    let Some(w) = &config.web else { return };
    match w.address() {
        None => problems.push(
            "web.listen",
            format!(
                "\"{}\" is not an IP address and port (such as 127.0.0.1:9665 or [::1]:9665)",
                w.listen
            ),
        ),
        Some(a) if a.port() == 0 => problems.push("web.listen", "port 0 is out of range (1-65535)"),
        Some(a) if !a.ip().is_loopback() && w.password_file.is_none() => problems.push(
            "web.password_file",
            format!(
                "required: web.listen {a} is reachable beyond this machine, and the page shows the cluster's state and acts on it (give a password file, or listen on 127.0.0.1)"
            ),
        ),
        Some(_) => {}
    }
    if let Some(f) = &w.password_file {
        if f.is_empty() {
            problems.push("web.password_file", "empty path");
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse;

    fn check(web: &str) -> Result<(), Vec<String>> {
        let text = format!(
            "Cluster(name: \"t\", servers: [Server(name: \"a\", interconnects: [\"198.51.100.1\"])], {web})"
        );
        parse("t.ron", &text)
            .map(|_| ())
            .map_err(|problems| problems.iter().map(|p| p.to_string()).collect())
    }

    #[test]
    fn the_address_is_an_ip_and_a_port() {
        assert_eq!(check(""), Ok(()));
        assert_eq!(check("web: (listen: \"127.0.0.1:9665\")"), Ok(()));
        assert_eq!(check("web: (listen: \"[::1]:9665\")"), Ok(()));
        for bad in [
            "localhost:9665",
            "127.0.0.1",
            "127.0.0.1:0",
            "127.0.0.1:65536",
        ] {
            let p = check(&format!("web: (listen: \"{bad}\")")).unwrap_err();
            assert!(
                p.len() == 1 && p[0].starts_with("web.listen: "),
                "{bad}: {p:?}"
            );
        }
    }

    #[test]
    fn beyond_loopback_needs_a_password_file() {
        for open in ["0.0.0.0:9665", "198.51.100.1:9665", "[::]:9665"] {
            let p = check(&format!("web: (listen: \"{open}\")")).unwrap_err();
            assert!(
                p.len() == 1 && p[0].starts_with("web.password_file: required"),
                "{open}: {p:?}"
            );
            assert_eq!(
                check(&format!(
                    "web: (listen: \"{open}\", password_file: \"/etc/understudy/web.password\")"
                )),
                Ok(())
            );
        }
    }

    #[test]
    fn a_configuration_without_a_page_keeps_its_digest() {
        let c = parse(
            "t.ron",
            "Cluster(name: \"t\", servers: [Server(name: \"a\", interconnects: [\"198.51.100.1\"])])",
        )
        .unwrap();
        assert!(!ron::to_string(&c).unwrap().contains("web"));
    }
}
