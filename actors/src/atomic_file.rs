//! Writing a file so that a reader, or a crash, sees the old content or the
//! new one, never a mix: a temporary file beside it, fsync, rename, fsync of
//! the folder. Used for the configuration (push), ownership records, the
//! mail spool, the cluster key and the alert-suspend deadline.
//!
//! [`write_atomically`] does the four steps for one file. The mail spool
//! writes many files at once: it [`stage`]s each (temporary file, fsync),
//! [`Staged::commit`]s each (rename), then calls [`sync_dir`] once for all.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Replaces `path` with `bytes` (created with `mode`). The temporary file
/// is unique to this process and call, and removed again on failure.
pub fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    stage(path, bytes, mode)?.commit()?;
    // The rename is durable once the folder is.
    sync_dir(parent(path))
}

/// A file written in full and flushed to disk under a temporary name
/// beside its path, not yet in place. Dropped without
/// [`commit`](Staged::commit), the temporary file is removed.
#[derive(Debug)]
pub struct Staged {
    tmp: PathBuf,
    path: PathBuf,
    committed: bool,
}

/// Writes `bytes` (mode `mode`) to a temporary file beside `path` and
/// flushes it to disk (fsync). The temporary name starts with `.` and ends
/// with `.tmp`, unique to this process and call; on failure it is removed.
pub fn stage(path: &Path, bytes: &[u8], mode: u32) -> io::Result<Staged> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let tmp = parent(path).join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let mut f = OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(mode)
        .open(&tmp)?;
    // From here on a failure drops `staged`, which removes the file.
    let staged = Staged {
        tmp,
        path: path.to_path_buf(),
        committed: false,
    };
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(staged)
}

impl Staged {
    /// Renames the file into place. Durable once the folder is flushed
    /// ([`sync_dir`]); until then a crash leaves the old state or the new.
    pub fn commit(mut self) -> io::Result<()> {
        fs::rename(&self.tmp, &self.path)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Flushes the folder `dir` itself (its entries: renames, new and removed
/// files) to disk.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The folder of `path` (`.` for a bare name).
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn replaces_the_file_with_the_mode_asked_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("us-atomic-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        write_atomically(&path, b"one", 0o600).unwrap();
        write_atomically(&path, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        // A folder that does not exist: an error, nothing left behind.
        assert!(write_atomically(&dir.join("no/such"), b"x", 0o600).is_err());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_staged_file_is_in_place_only_once_committed() {
        let dir = std::env::temp_dir().join(format!("us-staged-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let names = |d: &Path| -> Vec<String> {
            let mut n: Vec<String> = fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            n.sort();
            n
        };
        let a = stage(&dir.join("a"), b"one", 0o600).unwrap();
        let b = stage(&dir.join("b"), b"two", 0o600).unwrap();
        // Both written and flushed under temporary names, none in place.
        let staged = names(&dir);
        assert_eq!(staged.len(), 2);
        assert!(staged
            .iter()
            .all(|n| n.starts_with('.') && n.ends_with(".tmp")));
        a.commit().unwrap();
        // Dropped without a commit: its temporary file goes.
        drop(b);
        sync_dir(&dir).unwrap();
        assert_eq!(names(&dir), ["a"]);
        assert_eq!(fs::read(dir.join("a")).unwrap(), b"one");
        let _ = fs::remove_dir_all(&dir);
    }
}
