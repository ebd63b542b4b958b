//! `system` monitor settings (the product's system resource monitor): CPU,
//! memory and disk usage levels, each with how long usage must hold it. The
//! probe, which samples usage and judges it, is in the shell.

use serde::{Deserialize, Serialize};

use crate::problems::Problems;

/// Longest `duration`, seconds (a day).
pub const MAX_DURATION: u32 = 86_400;

/// `System(cpu: (warning: 80, error: 95, duration: 300), memory: (error: 90),
/// disks: [(path: "/data", error: 95, duration: 0)])`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename = "SystemConfig")]
pub struct SystemConfig {
    /// CPU usage of all CPUs together, percent.
    #[serde(default)]
    pub cpu: Option<Threshold>,
    /// Memory in use (total minus available), percent of the total.
    #[serde(default)]
    pub memory: Option<Threshold>,
    /// Space in use on mounted file systems, percent, as `df` shows it.
    #[serde(default)]
    pub disks: Vec<DiskThreshold>,
}

/// Usage levels of one metric and how long usage must stay at or above a
/// level before it counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename = "Threshold")]
pub struct Threshold {
    /// Usage, percent (1-100), from which the monitor turns Warning.
    #[serde(default)]
    pub warning: Option<u32>,
    /// Usage, percent (1-100), from which the monitor turns Error; above
    /// `warning` when both are set.
    #[serde(default)]
    pub error: Option<u32>,
    /// Seconds usage must stay at or above a level, in every sample, before
    /// the level counts (0-86400; 0: at once).
    #[serde(default = "default_duration")]
    pub duration: u32,
}

/// Levels for the space in use on one mounted file system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename = "DiskThreshold")]
pub struct DiskThreshold {
    /// Mount point of the file system (absolute path).
    pub path: String,
    /// Usage, percent (1-100), from which the monitor turns Warning.
    #[serde(default)]
    pub warning: Option<u32>,
    /// Usage, percent (1-100), from which the monitor turns Error; above
    /// `warning` when both are set.
    #[serde(default)]
    pub error: Option<u32>,
    /// Seconds usage must stay at or above a level, in every sample, before
    /// the level counts (0-86400; 0: at once).
    #[serde(default = "default_duration")]
    pub duration: u32,
}

fn default_duration() -> u32 {
    60
}

impl DiskThreshold {
    pub fn threshold(&self) -> Threshold {
        Threshold {
            warning: self.warning,
            error: self.error,
            duration: self.duration,
        }
    }
}

impl Threshold {
    fn validate(&self, path: &str, problems: &mut Problems) {
        if self.warning.is_none() && self.error.is_none() {
            problems.push(path, "set a warning level, an error level or both");
        }
        if let Some(w) = self.warning {
            problems.range(&format!("{path}.warning"), w, 1, 100);
        }
        if let Some(e) = self.error {
            problems.range(&format!("{path}.error"), e, 1, 100);
        }
        if let (Some(w), Some(e)) = (self.warning, self.error) {
            if w >= e {
                problems.push(
                    format!("{path}.warning"),
                    format!("the warning level ({w} %) must be below the error level ({e} %)"),
                );
            }
        }
        problems.range(&format!("{path}.duration"), self.duration, 0, MAX_DURATION);
    }
}

impl SystemConfig {
    pub fn validate(&self, path: &str, problems: &mut Problems) {
        if self.cpu.is_none() && self.memory.is_none() && self.disks.is_empty() {
            problems.push(path, "set at least one threshold (cpu, memory or disks)");
        }
        if let Some(t) = &self.cpu {
            t.validate(&format!("{path}.cpu"), problems);
        }
        if let Some(t) = &self.memory {
            t.validate(&format!("{path}.memory"), problems);
        }
        for (i, d) in self.disks.iter().enumerate() {
            let at = format!("{path}.disks[{i}]");
            if !d.path.starts_with('/') {
                problems.push(
                    format!("{at}.path"),
                    format!("\"{}\" is not an absolute path", d.path.escape_debug()),
                );
            } else if self.disks[..i]
                .iter()
                .any(|o| normalize(&o.path) == normalize(&d.path))
            {
                problems.push(format!("{at}.path"), format!("{} is listed twice", d.path));
            }
            d.threshold().validate(&at, problems);
        }
    }
}

/// `/data/` and `/data` are the same mount point.
fn normalize(path: &str) -> &str {
    match path.trim_end_matches('/') {
        "" => "/",
        p => p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::MonitorKind;

    fn thr(warning: Option<u32>, error: Option<u32>, duration: u32) -> Threshold {
        Threshold {
            warning,
            error,
            duration,
        }
    }

    fn disk(path: &str, warning: Option<u32>, error: Option<u32>, duration: u32) -> DiskThreshold {
        DiskThreshold {
            path: path.into(),
            warning,
            error,
            duration,
        }
    }

    fn problems_of(c: &SystemConfig) -> Vec<String> {
        crate::monitor::testing::problems_of(|path, p| c.validate(path, p))
    }

    #[test]
    fn validation() {
        assert_eq!(
            problems_of(&SystemConfig::default()),
            vec!["monitors[w].kind: set at least one threshold (cpu, memory or disks)"]
        );
        let ok = SystemConfig {
            cpu: Some(thr(Some(80), Some(90), 0)),
            memory: Some(thr(None, Some(100), 86_400)),
            disks: vec![disk("/", Some(1), None, 60)],
        };
        assert!(problems_of(&ok).is_empty(), "{:?}", problems_of(&ok));
        let bad = SystemConfig {
            cpu: Some(thr(None, None, 60)),
            memory: Some(thr(Some(90), Some(90), 86_401)),
            disks: vec![
                disk("data", Some(0), Some(101), 0),
                disk("/data", None, Some(90), 0),
                disk("/data/", None, Some(90), 0),
            ],
        };
        assert_eq!(
            problems_of(&bad),
            vec![
                "monitors[w].kind.cpu: set a warning level, an error level or both",
                "monitors[w].kind.memory.warning: the warning level (90 %) must be below the error level (90 %)",
                "monitors[w].kind.memory.duration: 86401 is out of range (0-86400)",
                "monitors[w].kind.disks[0].path: \"data\" is not an absolute path",
                "monitors[w].kind.disks[0].warning: 0 is out of range (1-100)",
                "monitors[w].kind.disks[0].error: 101 is out of range (1-100)",
                "monitors[w].kind.disks[2].path: /data/ is listed twice",
            ]
        );
    }

    #[test]
    fn ron_forms() {
        let options = ron::Options::default()
            .with_default_extension(ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES)
            .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
        let k: MonitorKind = options
            .from_str(
                r#"System(
                    cpu: (warning: 80, error: 95, duration: 300),
                    memory: Threshold(error: 90),
                    disks: [(path: "/data", error: 95, duration: 0)],
                )"#,
            )
            .unwrap();
        assert_eq!(
            k,
            MonitorKind::System(SystemConfig {
                cpu: Some(thr(Some(80), Some(95), 300)),
                memory: Some(thr(None, Some(90), 60)),
                disks: vec![disk("/data", None, Some(95), 0)],
            })
        );
    }
}
