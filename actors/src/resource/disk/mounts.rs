//! What is mounted where: `/proc/<pid>/mountinfo` parsed, a device's number,
//! and every mount of a device in the mount namespaces this process can see.
//! Blocking (file reads): callers run it in the blocking pool.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// A device number as `major:minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DevNum {
    pub major: u32,
    pub minor: u32,
}

impl DevNum {
    pub fn from_raw(dev: u64) -> DevNum {
        DevNum {
            major: libc::major(dev),
            minor: libc::minor(dev),
        }
    }

    /// `8:18`
    pub fn parse(text: &str) -> Option<DevNum> {
        let (major, minor) = text.split_once(':')?;
        Some(DevNum {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
        })
    }
}

impl std::fmt::Display for DevNum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

/// One line of a mountinfo file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// The filesystem's device number (field 3).
    pub dev: DevNum,
    /// Folder of the filesystem mounted there (`/` for the whole of it).
    pub root: String,
    /// Where it is mounted, as the reading process sees it.
    pub mount_point: String,
    pub fs_type: String,
    /// The mount source (a device path for disk filesystems).
    pub source: String,
}

/// Parses a mountinfo file (proc(5)): fields are separated by spaces,
/// optional fields end at ` - `, and spaces, tabs, newlines and
/// backslashes in paths are written as octal escapes (`\040`).
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            Some(MountEntry {
                dev: DevNum::parse(left.get(2)?)?,
                root: unescape(left.get(3)?),
                mount_point: unescape(left.get(4)?),
                fs_type: unescape(right.first()?),
                source: unescape(right.get(1)?),
            })
        })
        .collect()
}

fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() {
            let oct = &bytes[i + 1..i + 4];
            if oct.iter().all(|b| (b'0'..=b'7').contains(b)) {
                let v = oct.iter().fold(0u32, |v, b| v * 8 + u32::from(b - b'0'));
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mounts of this process's mount namespace.
pub fn own_mounts() -> Result<Vec<MountEntry>, String> {
    fs::read_to_string("/proc/self/mountinfo")
        .map(|t| parse_mountinfo(&t))
        .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))
}

/// The device number of a block device (symbolic links followed).
pub fn block_device(path: &str) -> Result<DevNum, String> {
    let meta = fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("device {path} does not exist"),
        _ => format!("device {path}: {e}"),
    })?;
    if meta.file_type().is_block_device() {
        Ok(DevNum::from_raw(meta.rdev()))
    } else if meta.is_file() {
        Err(format!(
            "{path} is a regular file, not a block device (attach it to a loop device first: losetup)"
        ))
    } else {
        Err(format!("{path} is not a block device"))
    }
}

/// Whether a mount holds the filesystem of block device `dev`: its device
/// number is `dev`, or its source is a path to that block device (for
/// filesystems that give their mounts numbers of their own, such as btrfs).
pub fn is_of_device(entry: &MountEntry, dev: DevNum) -> bool {
    if entry.dev == dev {
        return true;
    }
    entry.source.starts_with('/')
        && fs::metadata(&entry.source)
            .is_ok_and(|m| m.file_type().is_block_device() && DevNum::from_raw(m.rdev()) == dev)
}

/// Where a device was found mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    pub mount_point: String,
    /// A process of the mount namespace it was seen in; `None` for this
    /// process's own namespace.
    pub pid: Option<u32>,
}

impl std::fmt::Display for Sighting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.pid {
            None => write!(f, "{}", self.mount_point),
            Some(pid) => write!(
                f,
                "{} (in the mount namespace of process {pid})",
                self.mount_point
            ),
        }
    }
}

/// Every mount of block device `dev` in this process's mount namespace and
/// in the mount namespace of every process it can see in /proc (containers,
/// services with private mounts, other tools' namespaces): what "mounted
/// anywhere on this server" means.
pub fn mounted_anywhere(dev: DevNum) -> Result<Vec<Sighting>, String> {
    let mut found: Vec<Sighting> = own_mounts()?
        .iter()
        .filter(|m| is_of_device(m, dev))
        .map(|m| Sighting {
            mount_point: m.mount_point.clone(),
            pid: None,
        })
        .collect();
    let own_ns = fs::metadata("/proc/self/ns/mnt").map(|m| m.ino()).ok();
    let mut seen: BTreeSet<u64> = own_ns.into_iter().collect();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Ok(found);
    };
    let mut pids: Vec<u32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .collect();
    pids.sort_unstable();
    for pid in pids {
        // Processes come and go meanwhile: whatever cannot be read is skipped.
        let Ok(ns) = fs::metadata(format!("/proc/{pid}/ns/mnt")) else {
            continue;
        };
        if !seen.insert(ns.ino()) {
            continue;
        }
        let Ok(text) = fs::read_to_string(format!("/proc/{pid}/mountinfo")) else {
            continue;
        };
        found.extend(
            parse_mountinfo(&text)
                .iter()
                .filter(|m| is_of_device(m, dev))
                .map(|m| Sighting {
                    mount_point: m.mount_point.clone(),
                    pid: Some(pid),
                }),
        );
    }
    Ok(found)
}

/// The mount namespace of this process (`mnt:[inode]`).
pub fn mount_namespace() -> String {
    fs::read_link("/proc/self/ns/mnt")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The path as the kernel lists it: symbolic links resolved, no trailing
/// slash; the path as given when it cannot be resolved.
pub fn canonical(path: &str) -> String {
    fs::canonicalize(Path::new(path))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| {
            let t = path.trim_end_matches('/');
            if t.is_empty() {
                "/".into()
            } else {
                t.into()
            }
        })
}

/// Mounts of this namespace at `mount_point` (canonical) or below it.
pub fn at_or_below<'a>(mounts: &'a [MountEntry], mount_point: &str) -> Vec<&'a MountEntry> {
    let below = format!("{}/", mount_point.trim_end_matches('/'));
    mounts
        .iter()
        .filter(|m| m.mount_point == mount_point || m.mount_point.starts_with(&below))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
45 27 254:0 /run/netns /run/netns rw,relatime shared:1 - ext4 /dev/vda rw
68 47 7:0 / /tmp/my\\040disk rw,relatime - ext4 /dev/loop0 rw
70 68 0:45 / /tmp/my\\040disk/sub rw master:3 - tmpfs none rw
junk line
";

    #[test]
    fn mountinfo_lines() {
        let m = parse_mountinfo(SAMPLE);
        assert_eq!(m.len(), 4);
        assert_eq!(
            m[2],
            MountEntry {
                dev: DevNum { major: 7, minor: 0 },
                root: "/".into(),
                mount_point: "/tmp/my disk".into(),
                fs_type: "ext4".into(),
                source: "/dev/loop0".into(),
            }
        );
        assert_eq!(m[1].root, "/run/netns");
        assert_eq!(m[3].fs_type, "tmpfs");
        let below = at_or_below(&m, "/tmp/my disk");
        assert_eq!(below.len(), 2);
        assert!(at_or_below(&m, "/tmp/my").is_empty());
        assert_eq!(unescape("a\\134b\\011c\\"), "a\\b\tc\\");
        assert_eq!(unescape("\\04"), "\\04");
    }

    #[test]
    fn device_numbers() {
        assert_eq!(
            DevNum::parse("8:18"),
            Some(DevNum {
                major: 8,
                minor: 18
            })
        );
        assert_eq!(DevNum::parse("8"), None);
        assert_eq!(
            DevNum {
                major: 259,
                minor: 3
            }
            .to_string(),
            "259:3"
        );
        let e = block_device("/nonexistent/understudy-dev").unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
        let e = block_device("/proc/self/mountinfo").unwrap_err();
        assert!(e.contains("regular file"), "{e}");
        assert!(block_device("/proc")
            .unwrap_err()
            .contains("not a block device"));
    }

    #[test]
    fn own_namespace_is_readable() {
        let mine = own_mounts().unwrap();
        assert!(mine.iter().any(|m| m.mount_point == "/"));
        assert!(mount_namespace().starts_with("mnt:["));
        // A device nobody mounts is found nowhere.
        let nowhere = mounted_anywhere(DevNum {
            major: 4095,
            minor: 1_000_000,
        })
        .unwrap();
        assert!(nowhere.is_empty(), "{nowhere:?}");
    }
}
