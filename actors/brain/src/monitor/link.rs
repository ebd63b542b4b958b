//! `link` monitor settings (the product's NIC link up/down monitor): the
//! network interface whose link is watched. The probe is in the shell.

use serde::{Deserialize, Serialize};

use crate::host::valid_ifname;
use crate::problems::Problems;

/// `Link(interface: "eth1")`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename = "LinkConfig")]
pub struct LinkConfig {
    /// Network interface whose link is watched (1-15 bytes; no '/', ':' or
    /// whitespace).
    pub interface: String,
}

impl LinkConfig {
    pub fn validate(&self, path: &str, problems: &mut Problems) {
        if !valid_ifname(&self.interface) {
            problems.push(
                format!("{path}.interface"),
                format!(
                    "\"{}\" is not a valid interface name (1-15 bytes, no '/', ':' or whitespace)",
                    self.interface.escape_debug()
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::MonitorKind;

    #[test]
    fn names() {
        assert!(valid_ifname("eth0"));
        assert!(valid_ifname("enp0s31f6.100"));
        assert!(valid_ifname("fifteen-chars-x"));
        assert!(!valid_ifname(""));
        assert!(!valid_ifname("sixteen-chars-xx"));
        assert!(!valid_ifname("a/b"));
        assert!(!valid_ifname("a b"));
        assert!(!valid_ifname("eth0:1"));
        assert!(!valid_ifname(".."));
        let mut p = Problems::default();
        LinkConfig {
            interface: "eth 0".into(),
        }
        .validate("monitors[w].kind", &mut p);
        assert_eq!(
            p.into_vec()[0].to_string(),
            "monitors[w].kind.interface: \"eth 0\" is not a valid interface name (1-15 bytes, no '/', ':' or whitespace)"
        );
        let mut p = Problems::default();
        LinkConfig {
            interface: "eth0".into(),
        }
        .validate("monitors[w].kind", &mut p);
        assert!(p.is_empty());
    }

    #[test]
    fn ron_form() {
        let options = ron::Options::default()
            .with_default_extension(ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES)
            .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
        let k: MonitorKind = options.from_str(r#"Link(interface: "eth1")"#).unwrap();
        assert_eq!(
            k,
            MonitorKind::Link(LinkConfig {
                interface: "eth1".into()
            })
        );
    }
}
