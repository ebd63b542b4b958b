//! `http` monitor settings: the server, the request URI and the HTTP version
//! of the `HEAD` request. The probe is in the shell.

use serde::{Deserialize, Serialize};

use super::tcp::default_host;
use crate::host::{validate_host, validate_port};
use crate::problems::Problems;

/// HTTP version of the request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum HttpVersion {
    /// `HTTP/1.0`, without a `Host` header unless `host_header` is set.
    #[default]
    Http10,
    /// `HTTP/1.1`, with a `Host` header and `Connection: close`.
    Http11,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename = "HttpConfig")]
pub struct HttpConfig {
    /// Address (IPv4 or IPv6 literal) or host name of the server. A name is
    /// resolved at each check. Default `127.0.0.1`.
    #[serde(default = "default_host")]
    pub host: String,
    /// Port of the server (1-65535). Default 80.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Request URI: starts with `/`, no spaces or control characters.
    /// Default `/`; for any other URI a 4xx or 5xx status is an error.
    #[serde(default = "default_uri")]
    pub uri: String,
    /// HTTP version of the request. Default `Http10`.
    #[serde(default)]
    pub version: HttpVersion,
    /// Value of the `Host` header. Absent: `host` (with `:port` unless the
    /// port is 80) for HTTP/1.1, and no header for HTTP/1.0.
    #[serde(default)]
    pub host_header: Option<String>,
}

fn default_port() -> u16 {
    80
}

fn default_uri() -> String {
    "/".into()
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            host: default_host(),
            port: default_port(),
            uri: default_uri(),
            version: HttpVersion::default(),
            host_header: None,
        }
    }
}

impl HttpConfig {
    pub fn validate(&self, path: &str, problems: &mut Problems) {
        validate_host(&format!("{path}.host"), &self.host, problems);
        validate_port(&format!("{path}.port"), self.port, problems);
        if !self.uri.starts_with('/') {
            problems.push(
                format!("{path}.uri"),
                format!("\"{}\" does not start with '/'", self.uri),
            );
        }
        if !is_token_text(&self.uri) {
            problems.push(
                format!("{path}.uri"),
                "may hold only printable ASCII, without spaces",
            );
        }
        if let Some(h) = &self.host_header {
            if h.is_empty() {
                problems.push(format!("{path}.host_header"), "must not be empty");
            } else if !is_token_text(h) {
                problems.push(
                    format!("{path}.host_header"),
                    "may hold only printable ASCII, without spaces",
                );
            }
        }
    }
}

/// Printable ASCII without spaces: safe inside a request line or header.
fn is_token_text(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(port: u16, uri: &str) -> HttpConfig {
        HttpConfig {
            port,
            uri: uri.into(),
            ..HttpConfig::default()
        }
    }

    #[test]
    fn parses_with_defaults() {
        let c: HttpConfig = ron::from_str("()").unwrap();
        assert_eq!(c, HttpConfig::default());
        assert_eq!(
            (c.host.as_str(), c.port, c.uri.as_str()),
            ("127.0.0.1", 80, "/")
        );
        assert_eq!(c.version, HttpVersion::Http10);
        let kind = crate::monitor::tcp::parse_kind(
            r#"Http(port: 8080, uri: "/health", version: Http11, host_header: "www.example")"#,
        );
        let Ok(crate::monitor::MonitorKind::Http(c)) = kind else {
            panic!("{kind:?}");
        };
        assert_eq!(c.port, 8080);
        assert_eq!(c.uri, "/health");
        assert_eq!(c.version, HttpVersion::Http11);
        assert_eq!(c.host_header.as_deref(), Some("www.example"));
        assert_eq!(
            crate::monitor::tcp::parse_kind(r#"Http(uri: "health")"#),
            Err(vec![
                "monitors[w].kind.uri: \"health\" does not start with '/'".into()
            ])
        );
    }

    #[test]
    fn validation() {
        let mut p = Problems::default();
        config(80, "/a/b?c=d&e=%20").validate("m", &mut p);
        assert!(p.is_empty(), "{p:?}");

        let mut p = Problems::default();
        HttpConfig {
            host: String::new(),
            port: 0,
            uri: "health check".into(),
            host_header: Some("a b".into()),
            ..HttpConfig::default()
        }
        .validate("m", &mut p);
        let paths: Vec<&str> = p.0.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            ["m.host", "m.port", "m.uri", "m.uri", "m.host_header"]
        );

        for uri in ["/a\r\nX: y", "/a b", "/\u{e9}"] {
            let mut p = Problems::default();
            config(80, uri).validate("m", &mut p);
            assert_eq!(p.0.len(), 1, "{uri:?}");
            assert_eq!(p.0[0].path, "m.uri");
        }
        let mut p = Problems::default();
        HttpConfig {
            host_header: Some(String::new()),
            ..HttpConfig::default()
        }
        .validate("m", &mut p);
        assert_eq!(p.0[0].path, "m.host_header");
    }
}
