//! Syslog settings: where alerts go and how they are written. Pure data plus
//! validation; no I/O here.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::problems::Problems;

/// The local socket when `socket` is not given.
pub const DEFAULT_SOCKET: &str = "/dev/log";
/// The usual syslog port, UDP and TCP alike.
pub const DEFAULT_PORT: u16 = 514;
/// Longest APP-NAME RFC 5424 allows.
const MAX_APP_NAME: usize = 48;
/// Longest path a Unix socket address holds (`sun_path` less its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// `Syslog(local: true, remote: [Remote(address: "10.0.0.5", transport: Tcp)],
/// facility: Local3)`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "Syslog")]
pub struct SyslogConfig {
    /// Send to the local syslog daemon's socket. Default true.
    #[serde(default = "default_true")]
    pub local: bool,
    /// Path of the local socket; default `/dev/log`.
    #[serde(default)]
    pub socket: Option<String>,
    /// Collectors reached over the network.
    #[serde(default)]
    pub remote: Vec<Remote>,
    /// Facility of every line. Default `Daemon`.
    #[serde(default)]
    pub facility: Facility,
    /// Line format. Default `Rfc5424`.
    #[serde(default)]
    pub format: Format,
    /// APP-NAME (RFC 5424) or TAG (RFC 3164). Default `understudy`.
    #[serde(default = "default_app_name")]
    pub app_name: String,
}

/// `Remote(address: "collector.example", port: 514, transport: Udp)`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "Remote")]
pub struct Remote {
    /// IPv4 or IPv6 literal, or a host name (resolved when a connection or
    /// socket is opened).
    pub address: String,
    /// Default 514.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Default `Udp`.
    #[serde(default)]
    pub transport: Transport,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Transport {
    /// One datagram per alert; no delivery confirmation.
    #[default]
    Udp,
    /// One connection kept open; lines end with LF (RFC 6587 non-transparent
    /// framing).
    Tcp,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Format {
    #[default]
    Rfc5424,
    Rfc3164,
}

/// The facilities of RFC 5424 that have a common name (the numeric ones 12-15
/// are left out: their meaning differs between systems).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Facility {
    Kern,
    User,
    Mail,
    #[default]
    Daemon,
    Auth,
    Syslog,
    Lpr,
    News,
    Uucp,
    Cron,
    Authpriv,
    Ftp,
    Local0,
    Local1,
    Local2,
    Local3,
    Local4,
    Local5,
    Local6,
    Local7,
}

impl Facility {
    /// The facility number that goes into PRI.
    pub fn code(self) -> u8 {
        use Facility::*;
        match self {
            Kern => 0,
            User => 1,
            Mail => 2,
            Daemon => 3,
            Auth => 4,
            Syslog => 5,
            Lpr => 6,
            News => 7,
            Uucp => 8,
            Cron => 9,
            Authpriv => 10,
            Ftp => 11,
            Local0 => 16,
            Local1 => 17,
            Local2 => 18,
            Local3 => 19,
            Local4 => 20,
            Local5 => 21,
            Local6 => 22,
            Local7 => 23,
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_port() -> u16 {
    DEFAULT_PORT
}
fn default_app_name() -> String {
    "understudy".into()
}

impl Default for SyslogConfig {
    fn default() -> Self {
        SyslogConfig {
            local: true,
            socket: None,
            remote: Vec::new(),
            facility: Facility::default(),
            format: Format::default(),
            app_name: default_app_name(),
        }
    }
}

impl SyslogConfig {
    /// The local socket's path, when local delivery is on.
    pub fn local_socket(&self) -> Option<&str> {
        self.local
            .then(|| self.socket.as_deref().unwrap_or(DEFAULT_SOCKET))
    }

    pub fn validate(&self, path: &str, problems: &mut Problems) {
        if !self.local && self.remote.is_empty() {
            problems.push(
                path,
                "no destination: local is false and remote is empty".to_string(),
            );
        }
        if let Some(socket) = &self.socket {
            let p = format!("{path}.socket");
            if !socket.starts_with('/') {
                problems.push(p, format!("\"{socket}\" is not an absolute path"));
            } else if socket.len() > MAX_SOCKET_PATH || socket.contains('\0') {
                problems.push(
                    p,
                    format!(
                        "is not a usable socket path (at most {MAX_SOCKET_PATH} bytes, no NUL)"
                    ),
                );
            }
        }
        for (i, r) in self.remote.iter().enumerate() {
            let p = format!("{path}.remote[{i}]");
            crate::host::validate_host(&format!("{p}.address"), &r.address, problems);
            if r.port == 0 {
                problems.push(format!("{p}.port"), "0 is out of range (1-65535)");
            }
            let same = |o: &Remote| {
                o.transport == r.transport
                    && o.port == r.port
                    && o.address.eq_ignore_ascii_case(&r.address)
            };
            if let Some(j) = self.remote[..i].iter().position(same) {
                problems.push(p, format!("the same destination as remote[{j}]"));
            }
        }
        let app_ok = !self.app_name.is_empty()
            && self.app_name.len() <= MAX_APP_NAME
            && self
                .app_name
                .bytes()
                .all(|b| b.is_ascii_graphic() && !matches!(b, b':' | b'[' | b']'));
        if !app_ok {
            problems.push(
                format!("{path}.app_name"),
                format!(
                    "\"{}\" is not a usable name (1-{MAX_APP_NAME} printable ASCII characters, \
                     no space, ':', '[' or ']')",
                    self.app_name
                ),
            );
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> SyslogConfig {
        ron::from_str(text).unwrap()
    }

    fn problems(c: &SyslogConfig) -> Vec<String> {
        let mut p = Problems::default();
        c.validate("alerts.syslog", &mut p);
        p.into_vec().into_iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn defaults() {
        let c = parse("Syslog()");
        assert_eq!(c, SyslogConfig::default());
        assert_eq!(c.local_socket(), Some("/dev/log"));
        assert_eq!(c.facility, Facility::Daemon);
        assert_eq!(c.format, Format::Rfc5424);
        assert_eq!(c.app_name, "understudy");
        assert!(problems(&c).is_empty());
        let r = parse(r#"Syslog(remote: [Remote(address: "10.0.0.5")])"#).remote;
        assert_eq!(r[0].port, 514);
        assert_eq!(r[0].transport, Transport::Udp);
    }

    #[test]
    fn full_form() {
        let c = parse(
            r#"Syslog(local: false, socket: Some("/run/x.sock"), facility: Local7,
                      format: Rfc3164, app_name: "ha",
                      remote: [Remote(address: "[::1]", port: 6514, transport: Tcp)])"#,
        );
        assert_eq!(c.local_socket(), None);
        assert_eq!(c.facility.code(), 23);
        assert_eq!(c.remote[0].transport, Transport::Tcp);
        assert!(problems(&c).is_empty());
    }

    #[test]
    fn problems_carry_field_paths() {
        let c = SyslogConfig {
            local: false,
            socket: Some("relative.sock".into()),
            remote: vec![
                Remote {
                    address: "bad host!".into(),
                    port: 0,
                    transport: Transport::Udp,
                },
                Remote {
                    address: "".into(),
                    port: 514,
                    transport: Transport::Tcp,
                },
                Remote {
                    address: "BAD HOST!".into(),
                    port: 0,
                    transport: Transport::Udp,
                },
            ],
            app_name: "under study".into(),
            ..SyslogConfig::default()
        };
        let p = problems(&c);
        let paths: Vec<&str> = p.iter().map(|s| s.split(": ").next().unwrap()).collect();
        assert_eq!(
            paths,
            [
                "alerts.syslog.socket",
                "alerts.syslog.remote[0].address",
                "alerts.syslog.remote[0].port",
                "alerts.syslog.remote[1].address",
                "alerts.syslog.remote[2].address",
                "alerts.syslog.remote[2].port",
                "alerts.syslog.remote[2]",
                "alerts.syslog.app_name",
            ],
            "{p:#?}"
        );
        let none = SyslogConfig {
            local: false,
            ..SyslogConfig::default()
        };
        assert_eq!(
            problems(&none),
            ["alerts.syslog: no destination: local is false and remote is empty"]
        );
    }
}
