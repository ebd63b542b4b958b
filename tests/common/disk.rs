//! Real disks for the disk resource and disk monitor tests: an image file
//! with an ext4 filesystem attached to loop devices (`losetup`), helper
//! processes in mount namespaces of their own (`unshare`, `nsenter`), and
//! what a namespace has mounted (`/proc/PID/mountinfo`).
//!
//! Nothing here mounts in the test's own mount namespace: a test that
//! dies leaves no mount behind on the machine (a namespace's mounts go
//! with its last process), and [`LoopDisk`] detaches its loop devices when
//! dropped (a device still mounted somewhere is detached by the kernel at
//! its last unmount).

#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::skip::{self, Missing};
use super::{run_cmd, spawn_locked, wait_for, CmdOut, DEADLINE};

/// What this machine lacks for tests on real filesystems, if anything.
pub fn disk_unavailable() -> Option<Missing> {
    skip::need_root("loop devices and mounts need root")
        .or_else(|| skip::need_program_in("losetup", "mount", SBIN_PATHS))
        .or_else(|| skip::need_program_in("mkfs.ext4", "e2fsprogs", SBIN_PATHS))
        .or_else(|| skip::need_program_in("fsck", "util-linux", SBIN_PATHS))
        .or_else(|| skip::need_program_in("dumpe2fs", "e2fsprogs", SBIN_PATHS))
        .or_else(|| skip::need_program_in("unshare", "util-linux", SBIN_PATHS))
        .or_else(|| skip::need_program_in("nsenter", "util-linux", SBIN_PATHS))
        .or_else(|| {
            (!Path::new("/dev/loop-control").exists()).then(|| {
                skip::missing(
                    "loop devices",
                    "/dev/loop-control does not exist (no loop device support in this kernel or container)",
                )
            })
        })
}

/// Folders searched for the system tools besides PATH.
pub const SBIN_PATHS: &[&str] = &["/usr/local/sbin", "/usr/sbin", "/sbin"];

/// PATH with the sbin folders, for the tools run here.
pub fn path_with_sbin() -> String {
    let mut p = std::env::var("PATH").unwrap_or_default();
    for d in SBIN_PATHS {
        p.push(':');
        p.push_str(d);
    }
    p
}

/// A command with PATH extended by the sbin folders.
pub fn tool(program: &str) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("PATH", path_with_sbin());
    cmd
}

/// Runs a tool that must succeed; its output.
pub fn must(cmd: &mut Command) -> CmdOut {
    let out = run_cmd(cmd);
    assert!(out.success(), "{cmd:?} failed: {out:?}");
    out
}

/// A device number as `major:minor`.
pub fn dev_num(device: &str) -> (u32, u32) {
    let m = fs::metadata(device).unwrap_or_else(|e| panic!("stat {device}: {e}"));
    assert!(
        m.file_type().is_block_device(),
        "{device} is not a block device"
    );
    (libc::major(m.rdev()), libc::minor(m.rdev()))
}

/// An image file with a filesystem, attached to one or more loop devices.
/// Two loop devices over one image are two servers' views of one shared
/// disk: the kernel keeps a filesystem per device (a second mount of the
/// same device, even in another mount namespace, would share the first
/// one's superblock, which two servers never do), so a mount on each is
/// the real double mount that destroys data, and ext4's multi-mount
/// protection sees it.
pub struct LoopDisk {
    pub image: PathBuf,
    pub devices: Vec<String>,
}

impl LoopDisk {
    /// A `size_mb` MiB image in `dir` named `name`, made by
    /// `mkfs.ext4 -q -F MKFS_ARGS IMAGE`, attached to a loop device.
    pub fn ext4(dir: &Path, name: &str, size_mb: u64, mkfs_args: &[&str]) -> LoopDisk {
        let image = dir.join(name);
        let f = fs::File::create(&image).unwrap_or_else(|e| panic!("create {image:?}: {e}"));
        f.set_len(size_mb << 20).expect("size the image");
        drop(f);
        must(
            tool("mkfs.ext4")
                .args(["-q", "-F"])
                .args(mkfs_args)
                .arg(&image),
        );
        let mut disk = LoopDisk {
            image,
            devices: Vec::new(),
        };
        disk.attach();
        disk
    }

    /// Attaches the image to one more loop device; returns it.
    pub fn attach(&mut self) -> String {
        let out = must(tool("losetup").args(["-f", "--show"]).arg(&self.image));
        let device = out.stdout.trim().to_string();
        assert!(device.starts_with("/dev/loop"), "losetup said {out:?}");
        self.devices.push(device.clone());
        device
    }

    /// The first loop device.
    pub fn device(&self) -> &str {
        &self.devices[0]
    }

    /// `dumpe2fs -h` of the image: the superblock's fields (`Mount count`, ...).
    pub fn superblock(&self) -> std::collections::BTreeMap<String, String> {
        let out = must(tool("dumpe2fs").arg("-h").arg(&self.image));
        out.stdout
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect()
    }

    /// Detaches a loop device now (reads of it then find nothing).
    pub fn detach(&mut self, device: &str) {
        must(tool("losetup").args(["-d", device]));
        self.devices.retain(|d| d != device);
    }
}

impl Drop for LoopDisk {
    fn drop(&mut self) {
        for d in &self.devices {
            let out = run_cmd(tool("losetup").args(["-d", d]));
            if !out.success() {
                eprintln!("losetup -d {d}: {out:?}");
            }
        }
    }
}

/// The folders where process `pid`'s mount namespace has the filesystem of
/// device `dev` mounted.
pub fn mounted_in(pid: u32, dev: (u32, u32)) -> Vec<String> {
    let want = format!("{}:{}", dev.0, dev.1);
    let text = fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.get(2) == Some(&want.as_str())).then(|| f.get(4).map(|s| s.to_string()))?
        })
        .collect()
}

/// The mount namespace of a process (`mnt:[inode]`).
pub fn mount_ns(pid: u32) -> String {
    fs::read_link(format!("/proc/{pid}/ns/mnt"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A path as process `pid` sees it (through its root, in its mount
/// namespace).
pub fn seen_by(pid: u32, path: &Path) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/root")).join(path.strip_prefix("/").unwrap_or(path))
}

/// A shell script run in a mount namespace of its own (`unshare -m
/// --propagation private sh -c SCRIPT`): its mounts are seen by nobody
/// else; it ends (and they go) when the process is killed.
pub struct Namespaced {
    pub child: Child,
}

impl Namespaced {
    /// Starts `script` (which should end with a long-running `exec`) and
    /// waits until it has created the file `ready`.
    pub fn start(script: &str, ready: &Path) -> Namespaced {
        let mut cmd = tool("unshare");
        cmd.args(["-m", "--propagation", "private", "sh", "-c", script])
            .stdin(Stdio::null());
        let child = spawn_locked(&mut cmd).expect("start unshare");
        let mut ns = Namespaced { child };
        wait_for(&format!("{} to appear", ready.display()), DEADLINE, || {
            if let Ok(Some(status)) = ns.child.try_wait() {
                panic!("the namespaced script ended with {status}: {script}");
            }
            ready.exists()
        });
        ns
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Namespaced {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `sh -c SCRIPT` inside the mount namespace of process `pid`
/// (`nsenter -t PID -m`), as an operator's shell on that server would run.
pub fn spawn_in_mount_ns(pid: u32, script: &str) -> Child {
    let mut cmd = tool("nsenter");
    cmd.args(["-t", &pid.to_string(), "-m", "sh", "-c", script])
        .stdin(Stdio::null());
    spawn_locked(&mut cmd).expect("start nsenter")
}

/// Runs `ARGS...` inside the mount namespace of process `pid` to the end.
pub fn run_in_mount_ns(pid: u32, args: &[&str]) -> CmdOut {
    run_cmd(
        tool("nsenter")
            .args(["-t", &pid.to_string(), "-m"])
            .args(args),
    )
}

/// `ioctl(EXT4_IOC_SHUTDOWN, EXT4_GOING_FLAGS_NOLOGFLUSH)` on the ext4
/// filesystem holding `path`: from then on every read or write of it fails
/// with EIO, as a disk that died would.
pub fn shut_down_ext4(path: &Path) {
    use std::os::fd::AsRawFd;
    // _IOR('X', 125, __u32)
    const EXT4_IOC_SHUTDOWN: libc::c_ulong = 0x8004_587d;
    const EXT4_GOING_FLAGS_NOLOGFLUSH: u32 = 2;
    let f = fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut flags = EXT4_GOING_FLAGS_NOLOGFLUSH;
    // SAFETY: the ioctl reads one u32 from the pointer, which lives through
    // the call; the descriptor is open.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), EXT4_IOC_SHUTDOWN as _, &mut flags) };
    assert_eq!(
        r,
        0,
        "EXT4_IOC_SHUTDOWN on {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

/// How long ext4's multi-mount protection makes a mount wait when the
/// filesystem looks in use (twice 2 x 5 s + 1 s), plus room.
pub const MMP_WAIT: Duration = Duration::from_secs(60);
