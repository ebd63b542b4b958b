//! The identifier registry of the monitoring commands: one small JSON file
//! per identifier in [`dir`] (`/run/understudy/agents`, or
//! `UNDERSTUDY_AGENT_DIR`), made by the command when it starts and removed
//! when it ends by itself or by `--stop`. A kill -9 leaves the file behind:
//! the identifier stays taken until `--del` clears it, as in the product.
//! On `/run` (a tmpfs) the registry does not outlive a reboot.
//!
//! The file names the process by pid and by its start time (field 22 of
//! `/proc/PID/stat`) and boot id, so that a pid reused by another process
//! is never taken for the command: nothing is signalled unless both match.

use std::fs;
use std::io::{self, ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where the registry is unless `UNDERSTUDY_AGENT_DIR` says otherwise.
pub const DEFAULT_DIR: &str = "/run/understudy/agents";
pub const DIR_ENV: &str = "UNDERSTUDY_AGENT_DIR";

pub fn dir() -> PathBuf {
    std::env::var_os(DIR_ENV)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR))
}

/// One registered monitoring command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub identifier: String,
    /// `clp_httpmon` or `clp_smtpmon`.
    pub command: String,
    pub pid: u32,
    /// Start time of the process in clock ticks since boot.
    pub start_ticks: u64,
    pub boot_id: String,
    /// `host:port` watched.
    pub target: String,
    /// RFC 3339 time the command started.
    pub since: String,
    /// Checks paused by `--pause`.
    #[serde(default)]
    pub paused: bool,
}

impl Entry {
    /// An entry for this process.
    pub fn for_self(identifier: &str, command: &str, target: &str) -> io::Result<Entry> {
        let pid = std::process::id();
        Ok(Entry {
            identifier: identifier.to_string(),
            command: command.to_string(),
            pid,
            start_ticks: start_ticks(pid)?
                .ok_or_else(|| io::Error::new(ErrorKind::NotFound, "no /proc entry for myself"))?,
            boot_id: boot_id(),
            target: target.to_string(),
            since: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            paused: false,
        })
    }

    /// Whether the process named is still the one that registered.
    pub fn is_live(&self) -> bool {
        self.boot_id == boot_id() && start_ticks(self.pid).ok().flatten() == Some(self.start_ticks)
    }
}

/// Start time of process `pid` (`None`: no such process, or it has ended
/// and waits to be reaped).
fn start_ticks(pid: u32) -> io::Result<Option<u64>> {
    let stat = match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    // The name (field 2) is in parentheses and may hold anything: count
    // fields after the last ')'. Field 3 is the first after it; 22 is the
    // start time.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| io::Error::new(ErrorKind::InvalidData, "malformed /proc stat"))?;
    let mut fields = rest.split_whitespace();
    // A zombie has ended: only its parent has not reaped it yet.
    if matches!(fields.next(), Some("Z" | "X")) {
        return Ok(None);
    }
    fields
        .nth(18)
        .and_then(|t| t.parse().ok())
        .map(Some)
        .ok_or_else(|| io::Error::new(ErrorKind::InvalidData, "malformed /proc stat"))
}

fn boot_id() -> String {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// A failed registry operation: the system call and its error.
#[derive(Debug)]
pub struct SysError {
    pub function: &'static str,
    pub error: io::Error,
}

impl SysError {
    fn new(function: &'static str, error: io::Error) -> SysError {
        SysError { function, error }
    }
}

pub enum Created {
    Done,
    /// The identifier was taken already (by this entry, or by one that
    /// cannot be read: `None`).
    Taken(Option<Entry>),
}

pub struct Registry {
    dir: PathBuf,
}

impl Registry {
    pub fn new(dir: PathBuf) -> Registry {
        Registry { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, identifier: &str) -> PathBuf {
        self.dir.join(identifier)
    }

    /// Writes `entry` under a temporary name, fsynced.
    fn write_temp(&self, entry: &Entry) -> Result<PathBuf, SysError> {
        // Not named after the identifier: that may take all 255 bytes a
        // file name has.
        let tmp = self.dir.join(format!(".tmp.{}", std::process::id()));
        let text =
            serde_json::to_vec(entry).map_err(|e| SysError::new("write", io::Error::other(e)))?;
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)
            .map_err(|e| SysError::new("open", e))?;
        f.write_all(&text)
            .and_then(|()| f.sync_all())
            .map_err(|e| {
                let _ = fs::remove_file(&tmp);
                SysError::new("write", e)
            })?;
        Ok(tmp)
    }

    /// Registers `entry` unless its identifier is taken. The file appears
    /// whole or not at all (a hard link of a complete temporary file), and
    /// of two commands starting with one identifier only one wins.
    pub fn create(&self, entry: &Entry) -> Result<Created, SysError> {
        if !self.dir.is_dir() {
            fs::create_dir_all(&self.dir).map_err(|e| SysError::new("mkdir", e))?;
            let _ = fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o755));
        }
        let tmp = self.write_temp(entry)?;
        let linked = fs::hard_link(&tmp, self.path(&entry.identifier));
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(Created::Done),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                Ok(Created::Taken(self.read(&entry.identifier).ok().flatten()))
            }
            Err(e) => Err(SysError::new("link", e)),
        }
    }

    /// The entry of `identifier`, if registered.
    pub fn read(&self, identifier: &str) -> Result<Option<Entry>, SysError> {
        match fs::read(self.path(identifier)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| SysError::new("read", io::Error::new(ErrorKind::InvalidData, e))),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SysError::new("read", e)),
        }
    }

    /// Replaces the entry (the command's own, to record a pause).
    pub fn update(&self, entry: &Entry) -> Result<(), SysError> {
        let tmp = self.write_temp(entry)?;
        fs::rename(&tmp, self.path(&entry.identifier)).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            SysError::new("rename", e)
        })
    }

    /// Removes the entry of `identifier`.
    pub fn remove(&self, identifier: &str) -> Result<(), SysError> {
        match fs::remove_file(self.path(identifier)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(SysError::new("unlink", e)),
        }
    }

    /// Removes the entry of `identifier` if it still names this process
    /// (after a `--del` another command may own the identifier now).
    pub fn remove_own(&self, identifier: &str) -> Result<(), SysError> {
        match self.read(identifier)? {
            Some(e) if e.pid == std::process::id() => self.remove(identifier),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(tag: &str) -> Registry {
        let dir = std::env::temp_dir().join(format!("us-registry-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        Registry::new(dir)
    }

    #[test]
    fn create_read_update_remove() {
        let r = registry("cycle");
        let mut e = Entry::for_self("web1", "clp_httpmon", "localhost:80").unwrap();
        assert!(e.is_live());
        assert!(matches!(r.create(&e).unwrap(), Created::Done));
        assert_eq!(r.read("web1").unwrap().as_ref(), Some(&e));
        // Taken, whoever asks.
        match r.create(&e).unwrap() {
            Created::Taken(Some(other)) => assert_eq!(other, e),
            _ => panic!("the identifier should be taken"),
        }
        // Case counts.
        let upper = Entry::for_self("WEB1", "clp_smtpmon", "localhost:25").unwrap();
        assert!(matches!(r.create(&upper).unwrap(), Created::Done));
        e.paused = true;
        r.update(&e).unwrap();
        assert!(r.read("web1").unwrap().unwrap().paused);
        r.remove_own("web1").unwrap();
        assert_eq!(r.read("web1").unwrap(), None);
        r.remove("web1").unwrap();
        // No temporary files left behind.
        let names: Vec<_> = fs::read_dir(r.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["WEB1"]);
        fs::remove_dir_all(r.dir()).unwrap();
    }

    #[test]
    fn a_dead_or_other_process_is_not_live() {
        let mut e = Entry::for_self("x", "clp_httpmon", "t").unwrap();
        e.start_ticks += 1;
        assert!(!e.is_live(), "another process with my pid");
        let mut e = Entry::for_self("x", "clp_httpmon", "t").unwrap();
        e.pid = u32::MAX - 1;
        assert!(!e.is_live(), "no such process");
    }
}
