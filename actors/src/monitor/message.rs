//! `message` monitor (message receive): turns Error when a message with its
//! category and keyword arrives, and Normal again on a clear message.
//!
//! Messages reach the coordinator from `understudy message send` (and, later,
//! from an SNMP trap receiver for BMC notices); the coordinator hands each to
//! the message monitors whose category and keyword match, and the monitor
//! actor keeps the outstanding notice in [`ProbeEnv::message`].

use serde::{Deserialize, Serialize};

use super::{Check, CheckFuture, Probe, ProbeBuild, ProbeEnv};
use crate::model::problems::Problems;

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

    pub fn probe(&self, _build: &ProbeBuild) -> Result<Box<dyn Probe>, String> {
        Ok(Box::new(MessageProbe))
    }
}

struct MessageProbe;

impl Probe for MessageProbe {
    fn check(&mut self, env: &ProbeEnv) -> CheckFuture {
        let verdict = match &env.message {
            Some(text) => Check::Error(text.clone()),
            None => Check::Normal,
        };
        Box::pin(std::future::ready(verdict))
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
