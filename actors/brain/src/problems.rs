//! Collects every configuration problem instead of stopping at the first one.

use std::fmt;

/// One problem: where (a field path such as `groups[web].resources[app].depends`
/// or `FILE:line:col`) and what.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

#[derive(Debug, Default, Clone)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Records a problem when `value` is outside `min..=max`.
    pub fn range(&mut self, path: &str, value: u32, min: u32, max: u32) {
        if value < min || value > max {
            self.push(path, format!("{value} is out of range ({min}-{max})"));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_vec(self) -> Vec<Problem> {
        self.0
    }
}
