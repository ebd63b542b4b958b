//! Host names, IP literals, ports and I/O error texts, shared by every
//! setting that names a peer (tcp / smtp / http monitors, mail, syslog and
//! lamp notifiers); network interface names (link monitor, fip driver).

use std::io;
use std::net::IpAddr;

use super::problems::Problems;

/// Longest host name (RFC 1035).
pub const MAX_HOST_NAME: usize = 253;

/// An IP literal, IPv6 with or without brackets.
pub fn parse_ip(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
}

/// Checks a host field: an IP literal or a plausible host name.
pub fn validate_host(path: &str, host: &str, problems: &mut Problems) {
    if host.is_empty() {
        problems.push(path, "must not be empty");
        return;
    }
    if parse_ip(host).is_some() {
        return;
    }
    let name_ok = host.len() <= MAX_HOST_NAME
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if !name_ok {
        problems.push(
            path,
            format!("\"{host}\" is neither an IP address nor a host name"),
        );
    }
}

/// Checks a port to connect to: 0 is not one.
pub fn validate_port(path: &str, port: u16, problems: &mut Problems) {
    if port == 0 {
        problems.push(path, "0 is out of range (1-65535)");
    }
}

/// An I/O error as a short text: `connection refused`, without the
/// `(os error 111)` suffix and the capital.
pub fn io_text(e: &io::Error) -> String {
    let full = e.to_string();
    let text = match full.find(" (os error ") {
        Some(i) => &full[..i],
        None => &full,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => format!("{:?}", e.kind()),
    }
}

/// The first non-empty line of a peer's reply, fit for an alert: control
/// characters and invalid UTF-8 become `?`, and it is cut to `max`
/// characters.
pub fn excerpt(reply: &[u8], max: usize) -> String {
    let line = reply
        .split(|&b| b == b'\n' || b == b'\r')
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    let mut out = String::new();
    for (n, c) in String::from_utf8_lossy(line).chars().enumerate() {
        if n == max {
            out.push_str("...");
            break;
        }
        out.push(if c.is_control() || c == '\u{fffd}' {
            '?'
        } else {
            c
        });
    }
    out
}

/// The kernel's rule for interface names (`dev_valid_name`).
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c == '\0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_errors() {
        assert!(parse_ip("[::1]").is_some());
        assert!(parse_ip("host").is_none());
        let mut p = Problems::default();
        validate_host("a", "mail.example.com", &mut p);
        validate_host("b", "198.51.100.1", &mut p);
        validate_host("c", "bad host", &mut p);
        validate_host("d", "", &mut p);
        validate_port("e", 0, &mut p);
        let paths: Vec<String> = p.into_vec().into_iter().map(|p| p.path).collect();
        assert_eq!(paths, ["c", "d", "e"]);
        let e = io::Error::from_raw_os_error(111);
        assert_eq!(io_text(&e), "connection refused");
    }

    #[test]
    fn interface_names() {
        assert!(valid_ifname("eth0"));
        assert!(valid_ifname("enp0s31f6.100"));
        assert!(!valid_ifname(""));
        assert!(!valid_ifname("a/b"));
        assert!(!valid_ifname("sixteen-chars-xx"));
        assert!(!valid_ifname(".."));
    }
}
