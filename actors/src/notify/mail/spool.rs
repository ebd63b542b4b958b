//! The mail spool: `<state-dir>/mail-spool/`, one JSON file per mail not
//! yet accepted by a server.
//!
//! A file is named by the mail's sequence number (`00000000000000000042.json`),
//! so the directory sorts in sending order. It is written whole to a
//! temporary name, flushed to disk and renamed, and the directory is flushed
//! after a rename or removal: after a crash every file is either complete or
//! absent. Files that cannot be read back are moved aside (`*.bad`), never
//! retried forever and never deleted.
//!
//! These are blocking calls; the actor runs them in `spawn_blocking`.

use std::fs::{self, File};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::compose::MailRecord;

/// Name of the spool folder inside the state directory.
pub const SPOOL_DIR: &str = "mail-spool";
/// A spool file is a few kilobytes; anything far larger is not one.
const MAX_FILE: u64 = 1024 * 1024;

/// What [`Spool::load`] found.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The mails, oldest first, with their sequence numbers.
    pub mails: Vec<(u64, MailRecord)>,
    /// Files that could not be read back (moved aside), one line each.
    pub problems: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
}

impl Spool {
    /// The spool of `state_dir`, created if missing.
    pub fn open(state_dir: &Path) -> std::io::Result<Spool> {
        let dir = state_dir.join(SPOOL_DIR);
        fs::create_dir_all(&dir)?;
        Ok(Spool { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.json"))
    }

    /// Writes the mail durably: temporary file, fsync, rename, fsync of
    /// the folder.
    pub fn write(&self, seq: u64, record: &MailRecord) -> std::io::Result<()> {
        let text = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        crate::atomic_file::write_atomically(&self.path(seq), &text, 0o600)
    }

    /// Removes a sent mail; a file already gone is fine.
    pub fn remove(&self, seq: u64) -> std::io::Result<()> {
        match fs::remove_file(self.path(seq)) {
            Ok(()) => self.sync_dir(),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn sync_dir(&self) -> std::io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }

    /// Every mail in the spool, oldest first. Leftover temporary files
    /// (a crash before the rename) are removed; unreadable files are moved
    /// aside and reported in the second list.
    pub fn load(&self) -> std::io::Result<Loaded> {
        let mut mails = Vec::new();
        let mut problems = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.starts_with('.') && name.ends_with(".tmp") {
                let _ = fs::remove_file(&path);
                continue;
            }
            let Some(seq) = name
                .strip_suffix(".json")
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            match read_record(&path) {
                Ok(record) => mails.push((seq, record)),
                Err(e) => {
                    let aside = path.with_extension("bad");
                    let _ = fs::rename(&path, &aside);
                    problems.push(format!(
                        "{}: {e} (moved to {})",
                        path.display(),
                        aside.display()
                    ));
                }
            }
        }
        mails.sort_by_key(|(seq, _)| *seq);
        Ok(Loaded { mails, problems })
    }

    /// The number after the highest one in use (also counting files moved
    /// aside), so a new mail sorts after every older one.
    pub fn next_seq(&self) -> std::io::Result<u64> {
        let mut max = 0;
        for entry in fs::read_dir(&self.dir)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            let stem = name.split('.').find(|s| !s.is_empty()).unwrap_or_default();
            if let Ok(n) = stem.parse::<u64>() {
                max = max.max(n);
            }
        }
        Ok(max + 1)
    }
}

fn read_record(path: &Path) -> Result<MailRecord, String> {
    let meta = fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.len() > MAX_FILE {
        return Err(format!("{} bytes: not a spooled mail", meta.len()));
    }
    let text = fs::read(path).map_err(|e| e.to_string())?;
    serde_json::from_slice(&text).map_err(|e| format!("not a spooled mail: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::catalog::{Alert, Level};

    fn record(n: u64) -> MailRecord {
        let alert = Alert {
            time: "t".into(),
            server: "s1".into(),
            module: "rc".into(),
            event_id: 31,
            level: Level::Info,
            message: format!("alert {n}"),
        };
        MailRecord::for_alert(&alert, "c", "s1", "title", n)
    }

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("us-spool-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn write_load_remove() {
        let d = tmpdir("basic");
        let spool = Spool::open(&d).unwrap();
        assert_eq!(spool.next_seq().unwrap(), 1);
        for n in [3, 1, 12] {
            spool.write(n, &record(n)).unwrap();
        }
        assert_eq!(spool.next_seq().unwrap(), 13);
        let Loaded { mails, problems } = spool.load().unwrap();
        assert!(problems.is_empty());
        let seqs: Vec<u64> = mails.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, [1, 3, 12]);
        assert_eq!(mails[1].1.alert, "rc 31: alert 3");
        spool.remove(3).unwrap();
        spool.remove(3).unwrap();
        assert_eq!(Spool::open(&d).unwrap().load().unwrap().mails.len(), 2);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn torn_and_foreign_files() {
        let d = tmpdir("torn");
        let spool = Spool::open(&d).unwrap();
        spool.write(1, &record(1)).unwrap();
        fs::write(
            spool.dir().join("00000000000000000002.json"),
            b"{\"message_id\":",
        )
        .unwrap();
        fs::write(spool.dir().join(".00000000000000000003.tmp"), b"half").unwrap();
        fs::write(spool.dir().join("README"), b"not a mail").unwrap();
        let Loaded { mails, problems } = spool.load().unwrap();
        assert_eq!(mails.len(), 1);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(spool.dir().join("00000000000000000002.bad").exists());
        assert!(!spool.dir().join(".00000000000000000003.tmp").exists());
        // The number of the file moved aside is not used again.
        assert_eq!(spool.next_seq().unwrap(), 3);
        fs::remove_dir_all(&d).unwrap();
    }
}
