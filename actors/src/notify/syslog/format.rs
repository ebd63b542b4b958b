//! The text of one alert as a syslog line, RFC 5424 or RFC 3164. Pure apart
//! from reading the clock and the local time zone for RFC 3164 stamps.
//!
//! RFC 5424:
//! `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [understudy@32473 module=".."
//! event_id=".." server=".." cluster=".."] MSG`
//!
//! RFC 3164: `<PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSGID cluster=..: MSG`,
//! without HOSTNAME on the local socket (as the C library's `syslog()` does).
//!
//! Lines never contain control characters (they become spaces), so a line
//! is one line however it travels, and they are cut to a length every
//! receiver accepts.

use std::time::{SystemTime, UNIX_EPOCH};

use super::config::{Facility, Format};
use crate::model::catalog::{Alert, Level};

/// The SD-ID of our structured data: a name at the documentation
/// enterprise number (RFC 5612).
pub const SD_ID: &str = "understudy@32473";
/// Longest RFC 5424 line sent: RFC 5424 asks receivers to take 2048 octets.
pub const MAX_5424: usize = 2048;
/// Longest RFC 3164 line sent: the limit that RFC sets.
pub const MAX_3164: usize = 1024;

/// What is the same for every line of one notifier.
#[derive(Debug, Clone)]
pub struct LineSettings {
    pub facility: Facility,
    pub format: Format,
    pub app_name: String,
    pub procid: u32,
}

/// Syslog severity of an alert level.
pub fn severity(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warning => 4,
        Level::Info => 6,
    }
}

/// The PRI value: facility × 8 + severity.
pub fn pri(facility: Facility, level: Level) -> u8 {
    facility.code() * 8 + severity(level)
}

/// MSGID of an alert: module and event id, `rc32`.
pub fn msgid(alert: &Alert) -> String {
    header_field(&format!("{}{}", alert.module, alert.event_id), 32)
}

/// One line (no framing). `with_hostname` is false only for RFC 3164 on the
/// local socket.
pub fn line(settings: &LineSettings, alert: &Alert, cluster: &str, with_hostname: bool) -> String {
    match settings.format {
        Format::Rfc5424 => rfc5424(settings, alert, cluster),
        Format::Rfc3164 => {
            let time = humantime::parse_rfc3339(&alert.time).unwrap_or_else(|_| SystemTime::now());
            rfc3164(settings, alert, cluster, with_hostname, &local_stamp(time))
        }
    }
}

pub fn rfc5424(s: &LineSettings, alert: &Alert, cluster: &str) -> String {
    // Re-rendered so that whatever the alert holds, the field is valid.
    let time = match humantime::parse_rfc3339(&alert.time) {
        Ok(t) => humantime::format_rfc3339_millis(t).to_string(),
        Err(_) => "-".into(),
    };
    let mut out = format!(
        "<{}>1 {time} {} {} {} {} [{SD_ID} module=\"{}\" event_id=\"{}\" server=\"{}\" cluster=\"{}\"] ",
        pri(s.facility, alert.level),
        header_field(&alert.server, 255),
        header_field(&s.app_name, 48),
        s.procid,
        msgid(alert),
        param_value(&alert.module),
        alert.event_id,
        param_value(&alert.server),
        param_value(cluster),
    );
    push_message(&mut out, &alert.message, MAX_5424);
    out
}

/// `stamp` is `Mmm dd hh:mm:ss` (see [`local_stamp`]).
pub fn rfc3164(
    s: &LineSettings,
    alert: &Alert,
    cluster: &str,
    with_hostname: bool,
    stamp: &str,
) -> String {
    let mut out = format!("<{}>{stamp} ", pri(s.facility, alert.level));
    if with_hostname {
        out.push_str(&header_field(&alert.server, 255));
        out.push(' ');
    }
    out.push_str(&format!(
        "{}[{}]: {} cluster={}: ",
        header_field(&s.app_name, 32),
        s.procid,
        msgid(alert),
        header_field(cluster, 255),
    ));
    push_message(&mut out, &alert.message, MAX_3164);
    out
}

/// A header field: printable ASCII without spaces (others become `_`), at
/// most `max` bytes, `-` when empty.
fn header_field(text: &str, max: usize) -> String {
    let out: String = text
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .take(max)
        .collect();
    if out.is_empty() {
        "-".into()
    } else {
        out
    }
}

/// An SD parameter value: `"`, `\` and `]` escaped with a backslash (RFC 5424
/// 6.3.3), control characters as spaces.
pub fn param_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' | '\\' | ']' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Appends the message, control characters as spaces, cut at a character
/// boundary so that `out` stays within `max` bytes.
fn push_message(out: &mut String, message: &str, max: usize) {
    for c in message.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// An RFC 3164 timestamp: `Nov  2 09:05:01` (day padded with a space).
pub fn stamp(month0: usize, day: u32, hour: u32, minute: u32, second: u32) -> String {
    format!(
        "{} {day:>2} {hour:02}:{minute:02}:{second:02}",
        MONTHS.get(month0).copied().unwrap_or("Jan")
    )
}

/// `time` as an RFC 3164 timestamp in the local time zone: receivers read
/// these stamps as their local time, and the stamp has no zone to say
/// otherwise.
pub fn local_stamp(time: SystemTime) -> String {
    let secs = match time.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as libc::time_t,
        Err(_) => 0,
    };
    // SAFETY: tm is plain data; localtime_r writes into it and only reads
    // `secs`. It is the thread-safe variant.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = !unsafe { libc::localtime_r(&secs, &mut tm) }.is_null();
    if ok {
        stamp(
            tm.tm_mon as usize,
            tm.tm_mday as u32,
            tm.tm_hour as u32,
            tm.tm_min as u32,
            tm.tm_sec as u32,
        )
    } else {
        // No zone information at all: UTC is the best left.
        let s = humantime::format_rfc3339_seconds(time).to_string();
        let month: usize = s.get(5..7).and_then(|m| m.parse().ok()).unwrap_or(1);
        let num = |r: std::ops::Range<usize>| s.get(r).and_then(|v| v.parse().ok()).unwrap_or(0);
        stamp(
            month.saturating_sub(1),
            num(8..10),
            num(11..13),
            num(14..16),
            num(17..19),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(format: Format) -> LineSettings {
        LineSettings {
            facility: Facility::Local3,
            format,
            app_name: "understudy".into(),
            procid: 4242,
        }
    }

    fn alert(level: Level, message: &str) -> Alert {
        Alert {
            time: "2026-11-22T09:05:01.250Z".into(),
            server: "n1".into(),
            module: "rc".into(),
            event_id: 32,
            level,
            message: message.into(),
        }
    }

    #[test]
    fn pri_values() {
        assert_eq!(pri(Facility::Kern, Level::Error), 3);
        assert_eq!(pri(Facility::Daemon, Level::Error), 27);
        assert_eq!(pri(Facility::Daemon, Level::Warning), 28);
        assert_eq!(pri(Facility::Daemon, Level::Info), 30);
        assert_eq!(pri(Facility::Local0, Level::Info), 134);
        assert_eq!(pri(Facility::Local7, Level::Error), 187);
        assert_eq!(pri(Facility::Authpriv, Level::Warning), 84);
    }

    #[test]
    fn rfc5424_line() {
        let l = rfc5424(
            &settings(Format::Rfc5424),
            &alert(Level::Error, "resource app failed"),
            "c1",
        );
        assert_eq!(
            l,
            "<155>1 2026-11-22T09:05:01.250Z n1 understudy 4242 rc32 \
             [understudy@32473 module=\"rc\" event_id=\"32\" server=\"n1\" cluster=\"c1\"] \
             resource app failed"
        );
    }

    #[test]
    fn escaping_and_control_characters() {
        assert_eq!(param_value(r#"a"b\c]d"#), r#"a\"b\\c\]d"#);
        assert_eq!(param_value("x\ny"), "x y");
        let mut a = alert(Level::Info, "two\nlines\r\tand a bell\u{7}");
        a.server = "node 1".into();
        a.time = "yesterday".into();
        let l = rfc5424(&settings(Format::Rfc5424), &a, "c \"quoted\" ]");
        assert!(
            l.starts_with("<158>1 - node_1 understudy 4242 rc32 "),
            "{l}"
        );
        assert!(
            l.contains(r#"server="node 1" cluster="c \"quoted\" \]"]"#),
            "{l}"
        );
        assert!(l.ends_with("] two lines  and a bell "), "{l}");
        assert!(!l.chars().any(|c| c.is_control()));
    }

    #[test]
    fn long_messages_are_cut_at_a_character_boundary() {
        let long = "é".repeat(3000);
        let l = rfc5424(&settings(Format::Rfc5424), &alert(Level::Info, &long), "c");
        assert!(l.len() <= MAX_5424 && l.len() > MAX_5424 - 2, "{}", l.len());
        let l = rfc3164(
            &settings(Format::Rfc3164),
            &alert(Level::Info, &long),
            "c",
            true,
            "Nov 22 09:05:01",
        );
        assert!(l.len() <= MAX_3164 && l.len() > MAX_3164 - 2, "{}", l.len());
    }

    #[test]
    fn rfc3164_line() {
        let s = settings(Format::Rfc3164);
        let a = alert(Level::Warning, "monitor w warned");
        assert_eq!(
            rfc3164(&s, &a, "c1", true, "Nov 22 09:05:01"),
            "<156>Nov 22 09:05:01 n1 understudy[4242]: rc32 cluster=c1: monitor w warned"
        );
        assert_eq!(
            rfc3164(&s, &a, "c1", false, "Nov 22 09:05:01"),
            "<156>Nov 22 09:05:01 understudy[4242]: rc32 cluster=c1: monitor w warned"
        );
        // The stamp of `line` is whatever the local zone says; its shape is fixed.
        let l = line(&s, &a, "c1", true);
        let stamp = &l[5..20];
        assert!(
            MONTHS.contains(&&stamp[..3]) && stamp.as_bytes()[9] == b':',
            "{l}"
        );
    }

    #[test]
    fn rfc3164_stamps() {
        assert_eq!(stamp(10, 2, 9, 5, 1), "Nov  2 09:05:01");
        assert_eq!(stamp(0, 31, 23, 59, 59), "Jan 31 23:59:59");
        // Out of range (never from localtime_r) still gives a stamp.
        assert_eq!(stamp(12, 1, 0, 0, 0), "Jan  1 00:00:00");
    }

    #[test]
    fn msgid_is_module_and_id() {
        let mut a = alert(Level::Info, "");
        assert_eq!(msgid(&a), "rc32");
        a.module = "alert".into();
        a.event_id = 1010;
        assert_eq!(msgid(&a), "alert1010");
        a.module = "x".repeat(40);
        assert_eq!(msgid(&a).len(), 32);
    }
}
