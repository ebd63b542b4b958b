//! Where the guardian's and the daemon's messages go: stderr, and through
//! it the journal under systemd, with each line's priority.
//!
//! When stderr is systemd's journal stream (`JOURNAL_STREAM` names the
//! device and inode of stderr, as systemd sets it for `StandardError=journal`,
//! the default), every line starts with its syslog priority in the kernel's
//! `<N>` form (`<3>` error, `<4>` warning, `<5>` notice, `<6>` info, `<7>`
//! debug), which journald takes off the line and records as the entry's
//! priority (`SyslogLevelPrefix=`, on by default): `journalctl -p warning`
//! then shows the warnings and errors alone. The timestamp is left out
//! there (the journal keeps its own). Anywhere else (a terminal, a file, a
//! test's pipe, or a stderr redirected away from the journal after the
//! variable was inherited) lines are as before: timestamp, level, message.
//!
//! Why prefixes rather than the journal's native protocol (the
//! `tracing-journald` crate): the guardian writes its messages without any
//! logging framework (it must say what it does even while it releases a
//! dead daemon's resources) and would need a second path; the prefix is
//! one rule for both processes, keeps stderr as the single place logs go
//! (nothing is lost when journald restarts: the stream reconnects, and a
//! datagram socket would drop), and needs no socket or crate.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::sync::OnceLock;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{Format, Full, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Syslog priorities (the ones used here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Err = 3,
    Warning = 4,
    Notice = 5,
    Info = 6,
    Debug = 7,
}

impl From<&Level> for Priority {
    fn from(level: &Level) -> Priority {
        match *level {
            Level::ERROR => Priority::Err,
            Level::WARN => Priority::Warning,
            Level::INFO => Priority::Info,
            _ => Priority::Debug,
        }
    }
}

/// Whether `journal_stream` (the value of `JOURNAL_STREAM`, `DEVICE:INODE`)
/// names the file with this device and inode.
pub fn names_stream(journal_stream: &str, dev: u64, ino: u64) -> bool {
    let Some((d, i)) = journal_stream.trim().split_once(':') else {
        return false;
    };
    d.parse::<u64>() == Ok(dev) && i.parse::<u64>() == Ok(ino)
}

/// Whether stderr is the journal's stream (checked once).
pub fn to_journal() -> bool {
    static JOURNAL: OnceLock<bool> = OnceLock::new();
    *JOURNAL.get_or_init(|| {
        let Ok(stream) = std::env::var("JOURNAL_STREAM") else {
            return false;
        };
        // /proc/self/fd/2 follows the descriptor to the pipe or socket.
        match std::fs::metadata("/proc/self/fd/2") {
            Ok(m) => names_stream(&stream, m.dev(), m.ino()),
            Err(_) => false,
        }
    })
}

/// `<N>` for the journal, nothing elsewhere.
pub fn prefix(priority: Priority) -> String {
    if to_journal() {
        format!("<{}>", priority as u8)
    } else {
        String::new()
    }
}

/// One line to stderr with its priority, ignoring write errors (a closed
/// or broken stderr must not stop the caller halfway).
pub fn line(priority: Priority, text: &str) {
    let prefix = prefix(priority);
    // Each line of a longer text carries the prefix: journald reads it per
    // line.
    let mut out = String::new();
    for l in text.lines() {
        out.push_str(&prefix);
        out.push_str(l);
        out.push('\n');
    }
    let _ = std::io::stderr().write_all(out.as_bytes());
}

/// The daemon's tracing output: stderr, filtered by `UNDERSTUDY_LOG`
/// (default `info`), with priorities and without timestamps in the journal.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("UNDERSTUDY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only on a terminal, never in log files or journals.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if to_journal() {
        builder
            .event_format(JournalFormat(
                tracing_subscriber::fmt::format().without_time(),
            ))
            .init();
    } else {
        builder.init();
    }
}

/// The default format, each line prefixed with its event's priority.
struct JournalFormat(Format<Full, ()>);

impl<S, N> FormatEvent<S, N> for JournalFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let priority = Priority::from(event.metadata().level());
        // Formatted whole first: a message with several lines gets the
        // prefix on each.
        let mut text = String::new();
        self.0.format_event(ctx, Writer::new(&mut text), event)?;
        for l in text.lines() {
            // (The level word is padded to five characters: no space
            // between the prefix and the message.)
            writeln!(writer, "<{}>{}", priority as u8, l.trim_start())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_stream_is_named_by_device_and_inode() {
        assert!(names_stream("8:1234", 8, 1234));
        assert!(names_stream("8:1234\n", 8, 1234));
        assert!(!names_stream("8:1235", 8, 1234));
        assert!(!names_stream("9:1234", 8, 1234));
        assert!(!names_stream("garbage", 8, 1234));
        assert!(!names_stream("", 8, 1234));
    }

    #[test]
    fn levels_map_to_syslog_priorities() {
        assert_eq!(Priority::from(&Level::ERROR) as u8, 3);
        assert_eq!(Priority::from(&Level::WARN) as u8, 4);
        assert_eq!(Priority::from(&Level::INFO) as u8, 6);
        assert_eq!(Priority::from(&Level::DEBUG) as u8, 7);
        assert_eq!(Priority::from(&Level::TRACE) as u8, 7);
    }
}
