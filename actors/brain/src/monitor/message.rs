//! `message` monitor settings (message receive): the category and keyword
//! of the messages that turn the monitor Error. The probe is in the shell.

use serde::{Deserialize, Serialize};

use crate::problems::Problems;

/// Longest category, bytes (as in the product).
pub const MAX_CATEGORY: usize = 32;
/// Longest keyword, bytes.
pub const MAX_KEYWORD: usize = 1023;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename = "MessageConfig")]
pub struct MessageConfig {
    pub category: String,
    /// Empty: any keyword of the category matches.
    #[serde(default)]
    pub keyword: String,
}

impl MessageConfig {
    pub fn validate(&self, path: &str, problems: &mut Problems) {
        if self.category.is_empty() {
            problems.push(format!("{path}.category"), "must not be empty");
        }
        if self.category.len() > MAX_CATEGORY {
            problems.push(
                format!("{path}.category"),
                format!("longer than {MAX_CATEGORY} bytes"),
            );
        }
        if self.keyword.len() > MAX_KEYWORD {
            problems.push(
                format!("{path}.keyword"),
                format!("longer than {MAX_KEYWORD} bytes"),
            );
        }
    }

    /// Whether a message of `category` and `keyword` is for this monitor.
    pub fn matches(&self, category: &str, keyword: &str) -> bool {
        self.category == category && (self.keyword.is_empty() || self.keyword == keyword)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching() {
        let c = MessageConfig {
            category: "BMCNOTICE".into(),
            keyword: "198.51.100.5".into(),
        };
        assert!(c.matches("BMCNOTICE", "198.51.100.5"));
        assert!(!c.matches("BMCNOTICE", "198.51.100.6"));
        assert!(!c.matches("NIC", "198.51.100.5"));
        let any = MessageConfig {
            category: "NIC".into(),
            keyword: String::new(),
        };
        assert!(any.matches("NIC", "eth0"));
    }
}
