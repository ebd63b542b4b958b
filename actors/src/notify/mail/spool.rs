//! The mail spool: `<state-dir>/mail-spool/`, one JSON file per mail not
//! yet accepted by a server.
//!
//! A file is named by the mail's sequence number (`00000000000000000042.json`),
//! so the directory sorts in sending order. Files that cannot be read back
//! are moved aside (`*.bad`), never retried forever and never deleted.
//!
//! Mails are written and removed in batches (group commit): the actor
//! hands over every mail that arrived while the previous batch was being
//! written, and every sent mail whose file is still there. These are
//! blocking calls; the actor runs them in `spawn_blocking`, one write batch
//! and one removal batch at a time.
//!
//! Writing a batch ([`Spool::write_batch`]):
//!
//! 1. each mail is written whole to a temporary file (`.NAME.PID.N.tmp`)
//!    and that file is flushed to disk (fsync), several files at once;
//! 2. each temporary file is renamed to its mail's name;
//! 3. the folder is flushed to disk, once for the whole batch;
//! 4. only then do the mails count as spooled: the actor queues them for
//!    sending. None of them has been sent before this point.
//!
//! A crash during 1 leaves temporary files, which the next start removes:
//! those mails were in memory only and are lost, as any mail not yet
//! spooled is. A crash between 2 and the end of 3 leaves, for each mail of
//! the batch, its complete file or nothing (its content was on disk before
//! the rename; only the rename may be lost): the next start sends the ones
//! that are there. So a file is never torn, and a mail either is in the
//! spool whole or was never counted as spooled.
//!
//! Removing sent mails ([`Spool::remove_batch`]):
//!
//! 1. each file is removed;
//! 2. the folder is flushed to disk, once for the whole batch;
//! 3. only then does the actor raise `MailSent` for them.
//!
//! A crash before the end of 2 may leave any of these files on disk: those
//! mails are sent again at the next start, with the same Message-ID. This
//! is the at-least-once delivery of the notifier: a crash can duplicate the
//! mails accepted by a server whose removal had not reached the disk (the
//! removal batch being flushed and the mails accepted while it was; during
//! a burst also those whose removal waits for the writes, up to
//! `REMOVAL_WAIT` of them, see the actor), never lose one.

use std::fs;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};

use super::compose::MailRecord;
use crate::atomic_file::{stage, sync_dir, Staged};

/// Name of the spool folder inside the state directory.
pub const SPOOL_DIR: &str = "mail-spool";
/// A spool file is a few kilobytes; anything far larger is not one.
const MAX_FILE: u64 = 1024 * 1024;
/// Threads that write and flush the files of one batch at once.
const STAGERS: usize = 8;

/// What [`Spool::load`] found.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The mails, oldest first, with their sequence numbers.
    pub mails: Vec<(u64, MailRecord)>,
    /// Files that could not be read back (moved aside), one line each.
    pub problems: Vec<String>,
}

/// What [`Spool::remove_batch`] could not do; each such mail may be sent
/// again at the next start.
#[derive(Debug, Default)]
pub struct Removal {
    /// Files that could not be removed.
    pub failed: Vec<(u64, io::Error)>,
    /// The flush of the folder after the removals failed: none of them is
    /// sure to be on disk.
    pub unsynced: Option<io::Error>,
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

    /// Writes a batch of mails durably (see the module's doc): temporary
    /// files flushed to disk, renamed, one flush of the folder. One result
    /// per mail, in the batch's order; `Ok` means the mail is on disk.
    pub fn write_batch(&self, mails: &[(u64, MailRecord)]) -> Vec<io::Result<()>> {
        let mut results: Vec<io::Result<()>> = self
            .stage_all(mails)
            .into_iter()
            .map(|staged| staged.and_then(Staged::commit))
            .collect();
        if results.iter().any(Result::is_ok) {
            if let Err(e) = sync_dir(&self.dir) {
                for r in results.iter_mut().filter(|r| r.is_ok()) {
                    *r = Err(io::Error::new(
                        e.kind(),
                        format!("flushing the spool folder: {e}"),
                    ));
                }
            }
        }
        results
    }

    /// Writes and flushes a temporary file for each mail, on up to
    /// [`STAGERS`] threads: file systems that journal (ext4, XFS) commit
    /// flushes that wait at the same time together.
    fn stage_all(&self, mails: &[(u64, MailRecord)]) -> Vec<io::Result<Staged>> {
        let stage_one = |(seq, record): &(u64, MailRecord)| -> io::Result<Staged> {
            let text = serde_json::to_vec(record).map_err(io::Error::other)?;
            stage(&self.path(*seq), &text, 0o600)
        };
        let threads = STAGERS.min(mails.len());
        if threads <= 1 {
            return mails.iter().map(stage_one).collect();
        }
        let per_thread = mails.len().div_ceil(threads);
        let stage_one = &stage_one;
        std::thread::scope(|scope| {
            let started: Vec<_> = mails
                .chunks(per_thread)
                .map(|chunk| {
                    std::thread::Builder::new()
                        .name("mail-spool".into())
                        .spawn_scoped(scope, move || {
                            chunk.iter().map(stage_one).collect::<Vec<_>>()
                        })
                        // No thread to be had: this chunk on this one.
                        .map_err(|_| chunk)
                })
                .collect();
            started
                .into_iter()
                .flat_map(|thread| match thread {
                    Ok(handle) => handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                    Err(chunk) => chunk.iter().map(stage_one).collect(),
                })
                .collect()
        })
    }

    /// Removes sent mails, then flushes the folder once (see the module's
    /// doc). A file already gone is fine.
    pub fn remove_batch(&self, seqs: &[u64]) -> Removal {
        let mut removal = Removal::default();
        let mut removed = false;
        for &seq in seqs {
            match fs::remove_file(self.path(seq)) {
                Ok(()) => removed = true,
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => removal.failed.push((seq, e)),
            }
        }
        if removed {
            removal.unsynced = sync_dir(&self.dir).err();
        }
        removal
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

    fn batch(seqs: &[u64]) -> Vec<(u64, MailRecord)> {
        seqs.iter().map(|&n| (n, record(n))).collect()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut n: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    }

    #[test]
    fn write_load_remove() {
        let d = tmpdir("basic");
        let spool = Spool::open(&d).unwrap();
        assert_eq!(spool.next_seq().unwrap(), 1);
        for r in spool.write_batch(&batch(&[3, 1, 12])) {
            r.unwrap();
        }
        assert_eq!(spool.next_seq().unwrap(), 13);
        let Loaded { mails, problems } = spool.load().unwrap();
        assert!(problems.is_empty());
        let seqs: Vec<u64> = mails.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, [1, 3, 12]);
        assert_eq!(mails[1].1.alert, "rc 31: alert 3");
        let removal = spool.remove_batch(&[3]);
        assert!(removal.failed.is_empty() && removal.unsynced.is_none());
        // Gone already: fine.
        let removal = spool.remove_batch(&[3]);
        assert!(removal.failed.is_empty() && removal.unsynced.is_none());
        assert_eq!(Spool::open(&d).unwrap().load().unwrap().mails.len(), 2);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_batch_is_written_whole_and_removed_whole() {
        let d = tmpdir("batch");
        let spool = Spool::open(&d).unwrap();
        // More mails than threads, and a count that does not divide evenly.
        let seqs: Vec<u64> = (1..=53).collect();
        let mails = batch(&seqs);
        let results = spool.write_batch(&mails);
        assert_eq!(results.len(), 53);
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        // Every file in place, no temporary file left.
        assert_eq!(names(spool.dir()).len(), 53);
        assert!(names(spool.dir()).iter().all(|n| n.ends_with(".json")));
        let Loaded {
            mails: loaded,
            problems,
        } = spool.load().unwrap();
        assert!(problems.is_empty());
        assert_eq!(loaded, mails);
        // A removal batch, with a mail that is not (or no longer) there.
        let removal = spool.remove_batch(&[1, 2, 3, 99]);
        assert!(removal.failed.is_empty() && removal.unsynced.is_none());
        let left: Vec<u64> = spool.load().unwrap().mails.iter().map(|m| m.0).collect();
        assert_eq!(left, (4..=53).collect::<Vec<u64>>());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_mail_that_cannot_be_written_fails_alone() {
        let d = tmpdir("partial");
        let spool = Spool::open(&d).unwrap();
        // A folder where mail 2's file would go: its rename fails.
        fs::create_dir(spool.path(2)).unwrap();
        fs::write(spool.path(2).join("x"), b"x").unwrap();
        let results = spool.write_batch(&batch(&[1, 2, 3]));
        assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
        assert!(results[1].is_err());
        // No temporary file left behind for the one that failed.
        assert!(names(spool.dir()).iter().all(|n| !n.ends_with(".tmp")));
        // Removing it fails too, and is reported; the others go.
        let removal = spool.remove_batch(&[1, 2, 3]);
        assert_eq!(removal.failed.len(), 1);
        assert_eq!(removal.failed[0].0, 2);
        assert!(removal.unsynced.is_none());
        assert!(!spool.path(1).exists() && !spool.path(3).exists());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_crash_before_the_rename_leaves_only_a_temporary_file() {
        let d = tmpdir("crash");
        let spool = Spool::open(&d).unwrap();
        spool.write_batch(&batch(&[1]))[0].as_ref().unwrap();
        // Mail 2 written and flushed, then the "crash": never renamed, and
        // never cleaned up by this process.
        let text = serde_json::to_vec(&record(2)).unwrap();
        std::mem::forget(stage(&spool.path(2), &text, 0o600).unwrap());
        assert_eq!(names(spool.dir()).len(), 2);
        // The next start: mail 1 only; the temporary file is gone.
        let Loaded { mails, problems } = spool.load().unwrap();
        assert!(problems.is_empty());
        assert_eq!(mails.iter().map(|m| m.0).collect::<Vec<_>>(), [1]);
        assert_eq!(names(spool.dir()), ["00000000000000000001.json"]);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn torn_and_foreign_files() {
        let d = tmpdir("torn");
        let spool = Spool::open(&d).unwrap();
        spool.write_batch(&batch(&[1]))[0].as_ref().unwrap();
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
