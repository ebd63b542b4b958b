//! The decision journal: every input the cluster brain got, at its
//! instant, and every decision it took with the reason, one JSON line each
//! in `<state-dir>/journal.jsonl`, so that "why did it fail over?" has an
//! answer and `understudy simulate --replay FILE --config FILE` can run the
//! same brain through the same inputs again.
//!
//! Written by a thread of its own (the actors never wait for the disk),
//! without fsync (a journal is for understanding, the alert log is the
//! record). Bounded: one file per daemon run, the previous run's kept as
//! `journal.jsonl.1`; a file that reaches [`MAX_BYTES`] stops taking inputs
//! (a replay needs them from the start) and then keeps only decisions.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use crate::model::cluster::Input;

/// Largest journal file.
pub const MAX_BYTES: u64 = 64 * 1024 * 1024;
/// The journal's file name in the state folder.
pub const FILE: &str = "journal.jsonl";

pub use crate::model::journal::Line;

/// A cheap handle: lines go to the writer thread.
#[derive(Clone)]
pub struct Journal {
    tx: crossbeam_channel::Sender<Line>,
}

impl Journal {
    /// Starts the journal of this run (the previous one becomes `.1`).
    pub fn open(state_dir: &Path, start: Line) -> io::Result<Journal> {
        let path = state_dir.join(FILE);
        if path.exists() {
            fs::rename(&path, state_dir.join(format!("{FILE}.1")))?;
        }
        let mut out = BufWriter::new(File::create(&path)?);
        let (tx, rx) = crossbeam_channel::unbounded::<Line>();
        std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || {
                let mut written = 0u64;
                let mut full = false;
                let write = |line: &Line, out: &mut BufWriter<File>| -> io::Result<u64> {
                    let mut text = serde_json::to_vec(line).map_err(io::Error::other)?;
                    text.push(b'\n');
                    out.write_all(&text)?;
                    Ok(text.len() as u64)
                };
                let _ = write(&start, &mut out).map(|n| written += n);
                while let Ok(line) = rx.recv() {
                    if full && matches!(line, Line::Input { .. }) {
                        continue;
                    }
                    if !full && written >= MAX_BYTES {
                        full = true;
                        let t_us = match &line {
                            Line::Input { t_us, .. } | Line::Decision { t_us, .. } => *t_us,
                            _ => 0,
                        };
                        let _ = write(&Line::Full { t_us }, &mut out);
                        if matches!(line, Line::Input { .. }) {
                            continue;
                        }
                    }
                    match write(&line, &mut out) {
                        Ok(n) => written += n,
                        Err(e) => {
                            tracing::warn!("decision journal: {e}; no more lines");
                            return;
                        }
                    }
                    // Whatever came meanwhile goes in the same write.
                    if rx.is_empty() {
                        let _ = out.flush();
                    }
                }
                let _ = out.flush();
            })?;
        Ok(Journal { tx })
    }

    pub fn input(&self, now: Duration, input: &Input) {
        let _ = self.tx.send(Line::Input {
            t_us: now.as_micros() as u64,
            input: input.clone(),
        });
    }

    pub fn decision(&self, now: Duration, command: String, reason: String) {
        let _ = self.tx.send(Line::Decision {
            t_us: now.as_micros() as u64,
            command,
            reason,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_the_previous_run_is_kept() {
        let dir = std::env::temp_dir().join(format!("us-journal-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        for run in 1..=2u64 {
            let j = Journal::open(
                &dir,
                Line::Start {
                    server: "s1".into(),
                    incarnation: run,
                    config_digest: "d".into(),
                },
            )
            .unwrap();
            j.input(Duration::from_millis(5), &Input::Tick);
            j.decision(Duration::from_millis(5), "Start".into(), "why".into());
            drop(j);
            // The writer ends once every handle is gone and it has written.
            let path = dir.join(FILE);
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while fs::read_to_string(&path).unwrap().lines().count() < 3 {
                assert!(std::time::Instant::now() < deadline, "journal not written");
                std::thread::yield_now();
            }
        }
        let lines: Vec<Line> = fs::read_to_string(dir.join(FILE))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(matches!(lines[0], Line::Start { incarnation: 2, .. }));
        assert_eq!(
            lines[1],
            Line::Input {
                t_us: 5000,
                input: Input::Tick
            }
        );
        assert!(dir.join(format!("{FILE}.1")).exists());
        let _ = fs::remove_dir_all(&dir);
    }
}
