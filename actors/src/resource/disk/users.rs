//! The processes that use a filesystem, and ending them (what `fuser -km`
//! does, in our own code): every process whose current folder, root folder,
//! executable, an open file or a memory mapping is on the filesystem, found
//! by the filesystem's device number in `/proc/<pid>/{cwd,root,exe,fd/*,maps}`.
//! Matching by device number rather than by path also finds deleted files
//! and files opened through another path (a bind mount, another mount
//! namespace). This process, its parent (the guardian) and init are never
//! signalled. Blocking: callers run it in the blocking pool.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::mounts::DevNum;

const POLL: Duration = Duration::from_millis(20);
/// How long processes get to disappear after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(2);

/// Pids (sorted) of the processes using filesystem `dev`, except this
/// process, its parent and init.
pub fn users_of(dev: DevNum) -> Vec<u32> {
    let me = std::process::id();
    let parent = nix::unistd::getppid().as_raw() as u32;
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid > 1 && pid != me && pid != parent)
        .filter(|&pid| uses(pid, dev))
        .collect();
    pids.sort_unstable();
    pids
}

fn on(path: &str, dev: DevNum) -> bool {
    fs::metadata(path).is_ok_and(|m| DevNum::from_raw(m.dev()) == dev)
}

/// Whether process `pid` uses filesystem `dev` (a process that ends
/// meanwhile does not).
fn uses(pid: u32, dev: DevNum) -> bool {
    let base = format!("/proc/{pid}");
    if ["cwd", "root", "exe"]
        .iter()
        .any(|l| on(&format!("{base}/{l}"), dev))
    {
        return true;
    }
    if let Ok(fds) = fs::read_dir(format!("{base}/fd")) {
        let hit = fds
            .filter_map(|e| e.ok())
            .any(|e| fs::metadata(e.path()).is_ok_and(|m| DevNum::from_raw(m.dev()) == dev));
        if hit {
            return true;
        }
    }
    fs::read_to_string(format!("{base}/maps")).is_ok_and(|maps| maps_use(&maps, dev))
}

/// Whether a maps file (proc(5)) maps a file of `dev`: its fourth field is
/// the device, `major:minor` in hex.
fn maps_use(maps: &str, dev: DevNum) -> bool {
    maps.lines().any(|line| {
        let mut fields = line.split_whitespace();
        let Some(d) = fields.nth(3) else { return false };
        let Some((major, minor)) = d.split_once(':') else {
            return false;
        };
        let inode = fields.next().unwrap_or("0");
        inode != "0"
            && u32::from_str_radix(major, 16) == Ok(dev.major)
            && u32::from_str_radix(minor, 16) == Ok(dev.minor)
    })
}

/// What [`end_users`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ended {
    /// Ended by SIGTERM.
    pub terminated: Vec<u32>,
    /// Still there `grace` after SIGTERM, ended by SIGKILL.
    pub killed: Vec<u32>,
    /// Still there after SIGKILL (uninterruptible, most likely).
    pub left: Vec<u32>,
}

impl Ended {
    pub fn is_empty(&self) -> bool {
        self.terminated.is_empty() && self.killed.is_empty() && self.left.is_empty()
    }

    /// One line for the log.
    pub fn describe(&self) -> String {
        let list = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(" ");
        let mut parts = Vec::new();
        if !self.terminated.is_empty() {
            parts.push(format!("ended by SIGTERM: {}", list(&self.terminated)));
        }
        if !self.killed.is_empty() {
            parts.push(format!("killed (SIGKILL): {}", list(&self.killed)));
        }
        if !self.left.is_empty() {
            parts.push(format!("still there after SIGKILL: {}", list(&self.left)));
        }
        parts.join("; ")
    }
}

/// Ends the processes using filesystem `dev`: SIGTERM, then SIGKILL for
/// those still using it `grace` later. Processes that start to use it
/// meanwhile get the same treatment.
pub fn end_users(dev: DevNum, grace: Duration) -> Ended {
    let mut out = Ended::default();
    let first = users_of(dev);
    if first.is_empty() {
        return out;
    }
    for &pid in &first {
        signal(pid, Signal::SIGTERM);
    }
    let end = Instant::now() + grace;
    let mut now_users = users_of(dev);
    while !now_users.is_empty() && Instant::now() < end {
        std::thread::sleep(POLL);
        now_users = users_of(dev);
    }
    out.terminated = first
        .iter()
        .copied()
        .filter(|p| !now_users.contains(p))
        .collect();
    if now_users.is_empty() {
        return out;
    }
    for &pid in &now_users {
        signal(pid, Signal::SIGKILL);
    }
    let end = Instant::now() + KILL_WAIT;
    let mut left = users_of(dev);
    while left.iter().any(|p| now_users.contains(p)) && Instant::now() < end {
        std::thread::sleep(POLL);
        left = users_of(dev);
    }
    out.killed = now_users
        .iter()
        .copied()
        .filter(|p| !left.contains(p))
        .collect();
    out.left = left;
    out
}

fn signal(pid: u32, sig: Signal) {
    if pid > 1 {
        let _ = kill(Pid::from_raw(pid as i32), sig);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines() {
        let maps = "\
55d0c2a00000-55d0c2a02000 r--p 00000000 07:00 12 /mnt/x/bin/app
7ffd1c000000-7ffd1c021000 rw-p 00000000 00:00 0 [stack]
7f00 r--p 00000000 fe:01 99 /usr/lib/libc.so.6
";
        assert!(maps_use(maps, DevNum { major: 7, minor: 0 }));
        assert!(maps_use(
            maps,
            DevNum {
                major: 254,
                minor: 1
            }
        ));
        assert!(!maps_use(maps, DevNum { major: 0, minor: 0 }));
        assert!(!maps_use("", DevNum { major: 7, minor: 0 }));
    }

    #[test]
    fn finds_a_process_by_its_current_folder() {
        // The temporary folder's filesystem has other users too: only the
        // finding is checked here (the integration tests end the users of
        // a filesystem of their own).
        let dir = std::env::temp_dir().join(format!("us-users-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .current_dir(&dir)
            .spawn()
            .unwrap();
        let dev = DevNum::from_raw(fs::metadata(&dir).unwrap().dev());
        let pid = child.id();
        let end = Instant::now() + Duration::from_secs(10);
        while !users_of(dev).contains(&pid) && Instant::now() < end {
            std::thread::sleep(POLL);
        }
        assert!(users_of(dev).contains(&pid));
        // Never this process itself, though its executable and files are
        // there too.
        assert!(!users_of(dev).contains(&std::process::id()));
        let _ = child.kill();
        let _ = child.wait();
        let _ = fs::remove_dir_all(&dir);
    }
}
