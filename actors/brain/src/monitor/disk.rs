//! `disk` monitor settings (the product's disk monitor, READ method): the
//! device to read and how much of it. The probe is in the shell.

use serde::{Deserialize, Serialize};

use crate::problems::Problems;

/// `Disk(device: "/dev/sdb2")` or `Disk(device: "/dev/sdb2", io_size: 4096)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "DiskMonitorConfig")]
pub struct DiskMonitorConfig {
    /// The block device (or file) to read, an absolute path.
    pub device: String,
    /// Bytes read from the start of the device at each check
    /// ([`IO_SIZE`]). With direct I/O the read is rounded up to a whole
    /// number of 4096-byte blocks.
    #[serde(default = "default_io_size")]
    pub io_size: u32,
}

/// Bounds of `io_size`, bytes.
pub const IO_SIZE: (u32, u32) = (1, 64 * 1024 * 1024);
/// The default `io_size`: 2,000,000 bytes (ours; about 2 MB).
pub const DEFAULT_IO_SIZE: u32 = 2_000_000;

fn default_io_size() -> u32 {
    DEFAULT_IO_SIZE
}

impl DiskMonitorConfig {
    pub fn validate(&self, path: &str, problems: &mut Problems) {
        if self.device.is_empty() {
            problems.push(format!("{path}.device"), "the path is empty");
        } else if !self.device.starts_with('/') {
            problems.push(
                format!("{path}.device"),
                format!("\"{}\" is not an absolute path", self.device),
            );
        }
        problems.range(
            &format!("{path}.io_size"),
            self.io_size,
            IO_SIZE.0,
            IO_SIZE.1,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::tcp::parse_kind;
    use super::super::MonitorKind;
    use super::*;

    #[test]
    fn parses_with_its_default_and_names_bad_fields() {
        assert_eq!(
            parse_kind(r#"Disk(device: "/dev/sdb2")"#),
            Ok(MonitorKind::Disk(DiskMonitorConfig {
                device: "/dev/sdb2".into(),
                io_size: 2_000_000,
            }))
        );
        assert_eq!(
            parse_kind(r#"Disk(device: "/dev/sdb2", io_size: 512)"#),
            Ok(MonitorKind::Disk(DiskMonitorConfig {
                device: "/dev/sdb2".into(),
                io_size: 512,
            }))
        );
        assert_eq!(
            parse_kind(r#"Disk(device: "sdb2", io_size: 0)"#),
            Err(vec![
                "monitors[w].kind.device: \"sdb2\" is not an absolute path".into(),
                "monitors[w].kind.io_size: 0 is out of range (1-67108864)".into(),
            ])
        );
        assert_eq!(
            parse_kind(r#"Disk(device: "", io_size: 67108865)"#),
            Err(vec![
                "monitors[w].kind.device: the path is empty".into(),
                "monitors[w].kind.io_size: 67108865 is out of range (1-67108864)".into(),
            ])
        );
    }
}
