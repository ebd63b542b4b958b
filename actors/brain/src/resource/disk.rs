//! Disk resource settings (the product's "disk resource": a filesystem on a
//! shared block device, checked and mounted on the server that runs the
//! group). Pure data, validation, the parsing of mount options and the
//! `CLP_DISK` rule; no I/O here. The driver is in the shell
//! (`resource/disk/`).

use serde::{Deserialize, Serialize};

use crate::config::GroupConfig;
use crate::problems::Problems;

/// `Disk(device: "/dev/sdb2", mount_point: "/mnt/sdb2", fs_type: "ext4")`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "Disk")]
pub struct DiskConfig {
    /// The block device holding the filesystem (absolute path; a symbolic
    /// link such as `/dev/disk/by-id/...` is followed).
    pub device: String,
    /// Where the filesystem is mounted: an existing folder (absolute path).
    pub mount_point: String,
    /// Filesystem type, one of [`FS_TYPES`].
    pub fs_type: String,
    /// Mount options, comma-separated as in fstab: the generic flags of
    /// [`MountOptions`], anything else goes to the filesystem.
    #[serde(default = "default_mount_options")]
    pub mount_options: String,
    /// Whether the filesystem is checked before it is mounted.
    #[serde(default)]
    pub fsck: FsckMode,
    /// Seconds (1-9999) the check may take before it is killed (the
    /// activation then fails).
    #[serde(default = "default_fsck_timeout")]
    pub fsck_timeout: u32,
    /// Seconds (1-9999) one mount may take.
    #[serde(default = "default_mount_timeout")]
    pub mount_timeout: u32,
    /// Mount attempts after the first failure (0-99).
    #[serde(default = "default_retry")]
    pub mount_retry: u32,
    /// Seconds (1-9999) one unmount may take.
    #[serde(default = "default_mount_timeout")]
    pub unmount_timeout: u32,
    /// Unmount attempts after the first failure (0-99).
    #[serde(default = "default_retry")]
    pub unmount_retry: u32,
    /// What is done at stop to processes that still use the filesystem.
    #[serde(default)]
    pub forced_operation: ForcedOperation,
    /// Seconds (0-60) between SIGTERM and SIGKILL for those processes.
    #[serde(default = "default_kill_grace")]
    pub kill_grace: u32,
}

/// When the filesystem is checked before it is mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum FsckMode {
    /// Never: the mount alone (a journalling filesystem replays its journal).
    Never,
    /// `fsck -p`: the filesystem's checker decides (a full check only when
    /// the filesystem is marked unclean, or its mount count or check
    /// interval says so) and repairs what is safe to repair.
    #[default]
    Preen,
    /// `fsck -f -p`: a full check at every activation.
    Always,
}

/// What happens to processes that still use the filesystem when the
/// resource stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ForcedOperation {
    /// They get SIGTERM, then SIGKILL after `kill_grace` seconds, before
    /// each unmount attempt.
    #[default]
    Kill,
    /// They are left alone: the unmount fails while they use it.
    NoOperation,
}

/// Filesystem types a disk resource may hold.
pub const FS_TYPES: &[&str] = &["ext2", "ext3", "ext4", "xfs", "btrfs", "vfat", "jfs"];
/// Bounds of the timeouts, seconds.
pub const TIMEOUT_SECS: (u32, u32) = (1, 9999);
/// Bounds of `kill_grace`, seconds.
pub const KILL_GRACE_SECS: (u32, u32) = (0, 60);

fn default_mount_options() -> String {
    "rw".into()
}
fn default_fsck_timeout() -> u32 {
    crate::config::DEFAULT_SCRIPT_TIMEOUT
}
fn default_mount_timeout() -> u32 {
    60
}
fn default_retry() -> u32 {
    3
}
fn default_kill_grace() -> u32 {
    5
}

impl DiskConfig {
    /// A disk resource with every optional field at its default.
    pub fn new(device: &str, mount_point: &str, fs_type: &str) -> DiskConfig {
        DiskConfig {
            device: device.into(),
            mount_point: mount_point.into(),
            fs_type: fs_type.into(),
            mount_options: default_mount_options(),
            fsck: FsckMode::default(),
            fsck_timeout: default_fsck_timeout(),
            mount_timeout: default_mount_timeout(),
            mount_retry: default_retry(),
            unmount_timeout: default_mount_timeout(),
            unmount_retry: default_retry(),
            forced_operation: ForcedOperation::default(),
            kill_grace: default_kill_grace(),
        }
    }

    pub fn validate(&self, path: &str, problems: &mut Problems) {
        if let Err(e) = check_path(&self.device) {
            problems.push(format!("{path}.device"), e);
        }
        match check_path(&self.mount_point) {
            Err(e) => problems.push(format!("{path}.mount_point"), e),
            Ok(()) if self.mount_point.trim_end_matches('/').is_empty() => problems.push(
                format!("{path}.mount_point"),
                "the root folder cannot be a mount point of a disk resource",
            ),
            Ok(()) => {}
        }
        if !FS_TYPES.contains(&self.fs_type.as_str()) {
            problems.push(
                format!("{path}.fs_type"),
                format!(
                    "\"{}\" is not a known filesystem type ({})",
                    self.fs_type,
                    FS_TYPES.join(", ")
                ),
            );
        }
        if let Err(e) = MountOptions::parse(&self.mount_options) {
            problems.push(format!("{path}.mount_options"), e);
        }
        for (field, value) in [
            ("fsck_timeout", self.fsck_timeout),
            ("mount_timeout", self.mount_timeout),
            ("unmount_timeout", self.unmount_timeout),
        ] {
            problems.range(
                &format!("{path}.{field}"),
                value,
                TIMEOUT_SECS.0,
                TIMEOUT_SECS.1,
            );
        }
        for (field, value) in [
            ("mount_retry", self.mount_retry),
            ("unmount_retry", self.unmount_retry),
        ] {
            problems.range(
                &format!("{path}.{field}"),
                value,
                0,
                crate::validate::MAX_COUNT,
            );
        }
        problems.range(
            &format!("{path}.kill_grace"),
            self.kill_grace,
            KILL_GRACE_SECS.0,
            KILL_GRACE_SECS.1,
        );
    }

    /// The mount point without trailing slashes (as the kernel lists it).
    pub fn mount_point_clean(&self) -> &str {
        let t = self.mount_point.trim_end_matches('/');
        if t.is_empty() {
            "/"
        } else {
            t
        }
    }
}

/// An absolute path without `.` or `..` parts, empty parts or control
/// characters.
fn check_path(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err("the path is empty".into());
    }
    if !p.starts_with('/') {
        return Err(format!("\"{p}\" is not an absolute path"));
    }
    if p.chars().any(|c| c.is_control()) {
        return Err(format!("{p:?} holds a control character"));
    }
    let trimmed = p.trim_end_matches('/');
    if trimmed
        .split('/')
        .skip(1)
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(format!(
            "\"{p}\" is not a plain path (no empty, \".\" or \"..\" parts)"
        ));
    }
    Ok(())
}

/// Mount options split as mount(8) does: the generic flags (mount(2)'s
/// `MS_*`) and the rest, which goes to the filesystem as its data string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountOptions {
    pub read_only: bool,
    pub nosuid: bool,
    pub nodev: bool,
    pub noexec: bool,
    pub synchronous: bool,
    pub dirsync: bool,
    pub noatime: bool,
    pub nodiratime: bool,
    pub relatime: bool,
    pub strictatime: bool,
    pub lazytime: bool,
    pub silent: bool,
    /// Filesystem-specific options, comma-separated, in the order given.
    pub data: String,
}

/// Options that only mean something in fstab or to mount(8), or that would
/// turn the mount into something else (a bind mount, a remount, a move).
const REFUSED: &[&str] = &[
    "bind", "rbind", "move", "remount", "loop", "user", "users", "owner", "group", "nouser",
    "auto", "noauto", "nofail", "_netdev",
];

impl MountOptions {
    /// Parses `rw,noatime,data=ordered`; later flags win over earlier ones
    /// (`ro,rw` is read-write), as with mount(8).
    pub fn parse(text: &str) -> Result<MountOptions, String> {
        let mut o = MountOptions::default();
        let mut data: Vec<&str> = Vec::new();
        if text.trim().is_empty() {
            return Err("no options (\"rw\" or \"defaults\" for the usual ones)".into());
        }
        for opt in text.split(',') {
            match opt {
                "" => return Err(format!("\"{text}\" has an empty option")),
                _ if opt.chars().any(|c| c.is_whitespace() || c.is_control()) => {
                    return Err(format!("option {opt:?} holds a space or a control character"))
                }
                "defaults" | "async" | "suid" | "dev" | "exec" | "loud" | "nomand" => match opt {
                    "async" => o.synchronous = false,
                    "suid" => o.nosuid = false,
                    "dev" => o.nodev = false,
                    "exec" => o.noexec = false,
                    "loud" => o.silent = false,
                    _ => {}
                },
                "rw" => o.read_only = false,
                "ro" => o.read_only = true,
                "nosuid" => o.nosuid = true,
                "nodev" => o.nodev = true,
                "noexec" => o.noexec = true,
                "sync" => o.synchronous = true,
                "dirsync" => o.dirsync = true,
                "noatime" => o.noatime = true,
                "atime" => o.noatime = false,
                "nodiratime" => o.nodiratime = true,
                "diratime" => o.nodiratime = false,
                "relatime" => o.relatime = true,
                "norelatime" => o.relatime = false,
                "strictatime" => o.strictatime = true,
                "nostrictatime" => o.strictatime = false,
                "lazytime" => o.lazytime = true,
                "nolazytime" => o.lazytime = false,
                "silent" => o.silent = true,
                "mand" => {
                    return Err("\"mand\" (mandatory locks) is no longer supported by Linux".into())
                }
                _ if REFUSED.contains(&opt) || opt.starts_with("x-") || opt.starts_with("comment=") => {
                    return Err(format!(
                        "\"{opt}\" is an fstab or mount(8) option, not one for the filesystem of a disk resource"
                    ))
                }
                _ => data.push(opt),
            }
        }
        o.data = data.join(",");
        Ok(o)
    }
}

/// `CLP_DISK` as the scripts of `resource` see it: `FAILURE` when a disk
/// resource it depends on (directly, or through the resources it depends
/// on) is not active, `SUCCESS` otherwise, and so for a resource that
/// depends on no disk (a group without disk resources keeps the value the
/// templates need to go on).
pub fn clp_disk(
    group: &GroupConfig,
    resource: &str,
    active: impl Fn(&str) -> bool,
) -> &'static str {
    let failed = crate::plan::all_dependencies(group, resource)
        .iter()
        .filter(|d| {
            group
                .resources
                .iter()
                .any(|r| &r.name == *d && r.kind.type_name() == "disk")
        })
        .any(|d| !active(d));
    if failed {
        "FAILURE"
    } else {
        "SUCCESS"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::read;

    fn problems(c: &DiskConfig) -> Vec<String> {
        let mut p = Problems::default();
        c.validate("groups[g].resources[disk1].kind", &mut p);
        p.into_vec().into_iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn the_seed_example_parses_with_every_default() {
        let text = r#"Cluster(name: "c", servers: [Server(name: "s1")], groups: [Group(name: "failover1", resources: [
            Resource(name: "disk1", kind: Disk(device: "/dev/sdb2", mount_point: "/mnt/sdb2", fs_type: "ext3")),
        ])])"#;
        let (c, unknown) = read("c.ron", text).unwrap();
        assert!(unknown.is_empty(), "{unknown:?}");
        let crate::resource::ResourceKind::Disk(d) = &c.groups[0].resources[0].kind else {
            panic!("not a disk: {:?}", c.groups[0].resources[0].kind);
        };
        assert_eq!(*d, DiskConfig::new("/dev/sdb2", "/mnt/sdb2", "ext3"));
        assert_eq!(d.mount_options, "rw");
        assert_eq!(d.fsck, FsckMode::Preen);
        assert_eq!(d.fsck_timeout, 1800);
        assert_eq!((d.mount_timeout, d.mount_retry), (60, 3));
        assert_eq!((d.unmount_timeout, d.unmount_retry), (60, 3));
        assert_eq!(d.forced_operation, ForcedOperation::Kill);
        assert_eq!(d.kill_grace, 5);
        assert!(problems(d).is_empty());
        assert_eq!(c.groups[0].resources[0].kind.type_name(), "disk");
    }

    #[test]
    fn every_field_can_be_set() {
        let d: DiskConfig = ron::from_str(
            r#"Disk(device: "/dev/disk/by-id/x", mount_point: "/srv/data/", fs_type: "xfs",
                    mount_options: "ro,noatime,logbsize=256k", fsck: Never, fsck_timeout: 60,
                    mount_timeout: 5, mount_retry: 0, unmount_timeout: 9, unmount_retry: 99,
                    forced_operation: NoOperation, kill_grace: 0)"#,
        )
        .unwrap();
        assert_eq!(d.fsck, FsckMode::Never);
        assert_eq!(d.forced_operation, ForcedOperation::NoOperation);
        assert_eq!((d.mount_retry, d.unmount_retry, d.kill_grace), (0, 99, 0));
        assert_eq!(d.mount_point_clean(), "/srv/data");
        assert!(problems(&d).is_empty(), "{:?}", problems(&d));
    }

    #[test]
    fn errors_name_the_field() {
        let mut d = DiskConfig::new("dev/sdb2", "/", "ntfs");
        d.mount_options = "rw,,noatime".into();
        d.fsck_timeout = 0;
        d.mount_timeout = 10_000;
        d.unmount_retry = 100;
        d.kill_grace = 61;
        assert_eq!(
            problems(&d),
            [
                "groups[g].resources[disk1].kind.device: \"dev/sdb2\" is not an absolute path",
                "groups[g].resources[disk1].kind.mount_point: the root folder cannot be a mount point of a disk resource",
                "groups[g].resources[disk1].kind.fs_type: \"ntfs\" is not a known filesystem type (ext2, ext3, ext4, xfs, btrfs, vfat, jfs)",
                "groups[g].resources[disk1].kind.mount_options: \"rw,,noatime\" has an empty option",
                "groups[g].resources[disk1].kind.fsck_timeout: 0 is out of range (1-9999)",
                "groups[g].resources[disk1].kind.mount_timeout: 10000 is out of range (1-9999)",
                "groups[g].resources[disk1].kind.unmount_retry: 100 is out of range (0-99)",
                "groups[g].resources[disk1].kind.kill_grace: 61 is out of range (0-60)",
            ]
        );
        let d = DiskConfig::new("", "/mnt/../etc", "ext4");
        assert_eq!(
            problems(&d),
            [
                "groups[g].resources[disk1].kind.device: the path is empty",
                "groups[g].resources[disk1].kind.mount_point: \"/mnt/../etc\" is not a plain path (no empty, \".\" or \"..\" parts)",
            ]
        );
    }

    #[test]
    fn a_missing_required_field_is_named() {
        let text = r#"Cluster(name: "c", servers: [Server(name: "s1")], groups: [Group(name: "g", resources: [
            Resource(name: "disk1", kind: Disk(device: "/dev/sdb2", fs_type: "ext4")),
        ])])"#;
        let err = crate::config::parse("c.ron", text).unwrap_err();
        let text: Vec<String> = err.iter().map(|p| p.to_string()).collect();
        assert!(text.iter().any(|p| p.contains("mount_point")), "{text:?}");
    }

    #[test]
    fn mount_options_split_into_flags_and_data() {
        let o = MountOptions::parse("rw").unwrap();
        assert_eq!(o, MountOptions::default());
        let o =
            MountOptions::parse("defaults,ro,nosuid,nodev,noexec,noatime,data=ordered,barrier=1")
                .unwrap();
        assert!(o.read_only && o.nosuid && o.nodev && o.noexec && o.noatime);
        assert_eq!(o.data, "data=ordered,barrier=1");
        // The last word wins, as with mount(8).
        let o = MountOptions::parse("ro,sync,rw,async,noatime,atime").unwrap();
        assert!(!o.read_only && !o.synchronous && !o.noatime);
        for bad in [
            "",
            " ",
            "rw,",
            "bind",
            "remount,rw",
            "rw,x-systemd.automount",
            "no fail",
            "mand",
            "nofail",
        ] {
            assert!(MountOptions::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    fn group(resources: &str) -> GroupConfig {
        let text = format!(
            r#"Cluster(name: "c", servers: [Server(name: "s1")], groups: [Group(name: "g", resources: [{resources}])])"#
        );
        read("c.ron", &text).unwrap().0.groups.remove(0)
    }

    #[test]
    fn clp_disk_follows_the_disks_a_resource_depends_on() {
        let g = group(
            r#"Resource(name: "vip", kind: Fip(address: "198.51.100.10/24")),
               Resource(name: "disk1", kind: Disk(device: "/dev/sdb2", mount_point: "/mnt/a", fs_type: "ext4")),
               Resource(name: "disk2", kind: Disk(device: "/dev/sdc2", mount_point: "/mnt/b", fs_type: "ext4")),
               Resource(name: "app", kind: Exec(start: "/a")),
               Resource(name: "after", kind: Exec(start: "/a"), depends: ["app"]),
               Resource(name: "alone", kind: Exec(start: "/a"), depends: [])"#,
        );
        let all = |_: &str| true;
        let disk2_down = |r: &str| r != "disk2";
        assert_eq!(clp_disk(&g, "app", all), "SUCCESS");
        assert_eq!(clp_disk(&g, "app", disk2_down), "FAILURE");
        // Through the resource it depends on.
        assert_eq!(clp_disk(&g, "after", disk2_down), "FAILURE");
        // Depends on no disk: nothing to fail.
        assert_eq!(clp_disk(&g, "alone", disk2_down), "SUCCESS");
        // A failed floating IP is not a disk.
        assert_eq!(clp_disk(&g, "app", |r| r != "vip"), "SUCCESS");
        // A group without disks: SUCCESS, as before disk resources existed.
        let g = group(r#"Resource(name: "app", kind: Exec(start: "/a"))"#);
        assert_eq!(clp_disk(&g, "app", |_| false), "SUCCESS");
    }
}
