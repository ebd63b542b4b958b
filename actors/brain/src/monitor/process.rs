//! `process` monitor settings (the product's process name monitor): the
//! process name and how many must run. The probe, which scans `/proc`, is in
//! the shell.

use serde::{Deserialize, Serialize};

use crate::problems::Problems;

/// Highest `min_count`.
pub const MAX_MIN_COUNT: u32 = 9999;
/// Longest name, bytes (a file name's limit; argv\[0\] is matched as one).
pub const MAX_NAME: usize = 255;

/// `Process(name: "nginx", min_count: 2)`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename = "ProcessConfig")]
pub struct ProcessConfig {
    /// Process name: matches the kernel's name of a process
    /// (`/proc/<pid>/comm`, at most 15 bytes) or the file name of its first
    /// argument (argv\[0\] without its folder), which is how longer names
    /// match.
    pub name: String,
    /// Fewest processes of that name that must be running (1-9999).
    #[serde(default = "default_min_count")]
    pub min_count: u32,
}

fn default_min_count() -> u32 {
    1
}

impl ProcessConfig {
    pub fn validate(&self, path: &str, problems: &mut Problems) {
        if self.name.is_empty() {
            problems.push(format!("{path}.name"), "must not be empty");
        } else if self.name.len() > MAX_NAME {
            problems.push(
                format!("{path}.name"),
                format!("longer than {MAX_NAME} bytes"),
            );
        } else if self.name.contains('\0') {
            problems.push(format!("{path}.name"), "must not contain a NUL character");
        }
        problems.range(
            &format!("{path}.min_count"),
            self.min_count,
            1,
            MAX_MIN_COUNT,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::MonitorKind;

    fn problems_of(c: &ProcessConfig) -> Vec<String> {
        crate::monitor::testing::problems_of(|path, p| c.validate(path, p))
    }

    #[test]
    fn ron_forms() {
        let options = ron::Options::default()
            .with_default_extension(ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES)
            .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
        let k: MonitorKind = options
            .from_str(r#"Process(name: "nginx", min_count: 2)"#)
            .unwrap();
        assert_eq!(
            k,
            MonitorKind::Process(ProcessConfig {
                name: "nginx".into(),
                min_count: 2
            })
        );
        let k: MonitorKind = options.from_str(r#"Process(name: "sshd")"#).unwrap();
        let MonitorKind::Process(c) = k else { panic!() };
        assert_eq!(c.min_count, 1);
    }

    #[test]
    fn validation() {
        let ok = ProcessConfig {
            name: "nginx".into(),
            min_count: 1,
        };
        assert!(problems_of(&ok).is_empty());
        let bad = ProcessConfig {
            name: String::new(),
            min_count: 0,
        };
        assert_eq!(
            problems_of(&bad),
            vec![
                "monitors[w].kind.name: must not be empty",
                "monitors[w].kind.min_count: 0 is out of range (1-9999)",
            ]
        );
        let long = ProcessConfig {
            name: "x".repeat(256),
            min_count: 10_000,
        };
        assert_eq!(problems_of(&long).len(), 2);
        let nul = ProcessConfig {
            name: "a\0b".into(),
            min_count: 9999,
        };
        assert_eq!(
            problems_of(&nul),
            vec!["monitors[w].kind.name: must not contain a NUL character"]
        );
    }
}
