//! What a report mail says ([`MailRecord`], kept in the spool) and how it
//! becomes the bytes sent ([`render`]).
//!
//! The record holds the content fixed when the alert arrived: Message-ID,
//! time, subject and body. The envelope, the headers' addresses and the
//! encoding come from the settings in force at each attempt, so a corrected
//! recipient list also reaches the mails still waiting. With unchanged
//! settings a re-sent mail is byte for byte the one sent before.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::{BodyPart, MimePart};
use mail_builder::MessageBuilder;
use serde::{Deserialize, Serialize};

use super::config::{Charset, MailConfig};
use crate::model::catalog::Alert;

/// Longest alert text carried into the `MailSent` / `MailFailed` events.
const EVENT_TEXT: usize = 200;
/// Longest encoded word (RFC 2047 §2).
const MAX_ENCODED_WORD: usize = 75;

/// One report mail as stored in the spool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailRecord {
    /// Without the angle brackets; made once, kept across every attempt.
    pub message_id: String,
    /// Seconds since the epoch: the `Date:` header.
    pub created_unix: i64,
    /// RFC 3339: the time under the body.
    pub created: String,
    pub subject: String,
    /// The body text, lines ended by `\n`.
    pub body: String,
    /// Short text of the alert for the `MailSent` / `MailFailed` events.
    pub alert: String,
}

/// A mail ready for the SMTP exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub from: String,
    pub to: Vec<String>,
    pub data: Vec<u8>,
}

impl MailRecord {
    /// The mail for `alert`, sent by server `sender_server` of `cluster`.
    pub fn for_alert(
        alert: &Alert,
        cluster: &str,
        sender_server: &str,
        title: &str,
        seq: u64,
    ) -> MailRecord {
        let body = format!(
            "{message}\n\n\
             Alert:   {level} {module} {id}\n\
             Raised:  {time} on server {server}\n\
             Cluster: {cluster}\n",
            message = alert.message,
            level = alert.level.as_str(),
            module = alert.module,
            id = alert.event_id,
            time = alert.time,
            server = alert.server,
        );
        let short = format!("{} {}: {}", alert.module, alert.event_id, alert.message);
        MailRecord::new(sender_server, title, body, &short, seq)
    }

    /// The mail of `understudy alert test --mail`.
    pub fn test_mail(cluster: &str, sender_server: &str, title: &str, by: &str) -> MailRecord {
        let body = format!(
            "Test of the report mail settings of cluster {cluster}, asked for by {by}.\n\
             If you read this, report mails reach you.\n"
        );
        MailRecord::new(sender_server, title, body, "test mail", 0)
    }

    /// Adds the footer (who sent it, when) and a fresh Message-ID.
    fn new(
        sender_server: &str,
        title: &str,
        mut body: String,
        alert: &str,
        seq: u64,
    ) -> MailRecord {
        let now = SystemTime::now();
        let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let created = humantime::format_rfc3339_millis(now).to_string();
        body.push_str(&format!(
            "\n--\nSent by server {sender_server} at {created}\n"
        ));
        // Unique without a random crate: time, pid, sequence number and a
        // per-process random hash key.
        let mut h = RandomState::new().build_hasher();
        h.write_u64(seq);
        h.write_u128(since.as_nanos());
        let message_id = format!(
            "{}.{}.{}.{:08x}@{}",
            since.as_millis(),
            std::process::id(),
            seq,
            h.finish() as u32,
            id_domain(sender_server)
        );
        MailRecord {
            message_id,
            created_unix: since.as_secs() as i64,
            created,
            subject: title.to_string(),
            body,
            alert: cut(alert, EVENT_TEXT),
        }
    }
}

/// The right-hand side of a Message-ID: the server name where it is a
/// plausible domain, a fixed name otherwise.
fn id_domain(server: &str) -> String {
    let clean: String = server
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
        .collect();
    let clean = clean.trim_matches('.');
    if clean.is_empty() {
        "understudy.invalid".into()
    } else {
        format!("{clean}.understudy")
    }
}

/// `text` cut to `max` characters, with `...` when cut.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

/// The bytes to send for `record` under the current `config`.
pub fn render(record: &MailRecord, config: &MailConfig) -> Rendered {
    let charset = config.charset();
    let from = config.sender_address().to_string();
    let to = config.recipients.clone();
    let subject = if config.encode_title || !record.subject.is_ascii() {
        encode_words(&record.subject, charset)
    } else {
        record.subject.clone()
    };
    // CRLF line ends: the transfer encoding keeps them as mail line ends.
    let body_text = record.body.replace("\r\n", "\n").replace('\n', "\r\n");
    let body = MimePart::new(
        ContentType::new("text/plain").attribute("charset", charset.mime_name()),
        BodyPart::Binary(charset.encode(&body_text).into()),
    );
    let data = MessageBuilder::new()
        .from(from.as_str())
        .to(to.iter().map(String::as_str).collect::<Vec<_>>())
        .header("Subject", Raw::new(subject))
        .date(Date::new(record.created_unix))
        .message_id(MessageId::new(record.message_id.as_str()))
        .header("X-Mailer", Raw::new("understudy"))
        .body(body)
        .write_to_vec()
        .unwrap_or_default();
    Rendered { from, to, data }
}

/// `text` as RFC 2047 "Q" encoded words in `charset`, each at most 75
/// characters, separated by spaces (which decoders drop between words).
/// A character is never split across two words.
pub fn encode_words(text: &str, charset: Charset) -> String {
    let prefix = format!("=?{}?Q?", charset.mime_name());
    let room = MAX_ENCODED_WORD - prefix.len() - 2;
    let mut words: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut bytes = Vec::with_capacity(4);
    for c in text.chars() {
        bytes.clear();
        charset.encode_char(c, &mut bytes);
        let mut piece = String::new();
        for &b in &bytes {
            match b {
                b' ' => piece.push('_'),
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'!' | b'*' | b'+' | b'-' | b'/' => {
                    piece.push(b as char)
                }
                _ => piece.push_str(&format!("={b:02X}")),
            }
        }
        if current.len() + piece.len() > room && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        current.push_str(&piece);
    }
    if !current.is_empty() || words.is_empty() {
        words.push(current);
    }
    words
        .iter()
        .map(|w| format!("{prefix}{w}?="))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::catalog::Level;

    fn alert() -> Alert {
        Alert {
            time: "2026-11-22T03:00:00.000Z".into(),
            server: "s2".into(),
            module: "rc".into(),
            event_id: 32,
            level: Level::Error,
            message: "resource app could not be started".into(),
        }
    }

    fn text(data: &[u8]) -> String {
        String::from_utf8_lossy(data).into_owned()
    }

    #[test]
    fn record_of_an_alert() {
        let r = MailRecord::for_alert(&alert(), "c1", "s1", "cluster c1", 7);
        assert!(r.body.starts_with("resource app could not be started\n"));
        assert!(r.body.contains("ERROR rc 32"));
        assert!(r.body.contains("on server s2"));
        assert!(r.body.contains("Cluster: c1"));
        assert!(r
            .body
            .contains(&format!("Sent by server s1 at {}", r.created)));
        assert_eq!(r.alert, "rc 32: resource app could not be started");
        assert!(r.message_id.ends_with("@s1.understudy"), "{}", r.message_id);
        assert!(r.message_id.contains(".7."));
        let other = MailRecord::for_alert(&alert(), "c1", "s1", "cluster c1", 8);
        assert_ne!(r.message_id, other.message_id);
    }

    #[test]
    fn headers_and_body() {
        let mut config = MailConfig::new("m", &["ops@x.test", "dev@x.test"], "cluster c1");
        config.sender = super::super::config::MailSender::Address("ha@x.test".into());
        let r = MailRecord::for_alert(&alert(), "c1", "s1", &config.title, 1);
        let m = render(&r, &config);
        assert_eq!(m.from, "ha@x.test");
        assert_eq!(m.to, ["ops@x.test", "dev@x.test"]);
        let t = text(&m.data);
        assert!(t.contains("From: <ha@x.test>\r\n"), "{t}");
        assert!(t.contains("To: <ops@x.test>, <dev@x.test>\r\n"), "{t}");
        assert!(t.contains("Subject: cluster c1\r\n"), "{t}");
        assert!(
            t.contains(&format!("Message-ID: <{}>\r\n", r.message_id)),
            "{t}"
        );
        assert!(t.contains("charset=\"iso-8859-1\""), "{t}");
        assert!(t.contains("resource app could not be started\r\n"), "{t}");
        // Same record, same settings: the same bytes (a re-send is a copy).
        assert_eq!(render(&r, &config), m);
    }

    #[test]
    fn encoded_words() {
        assert_eq!(
            encode_words("Störung: Knoten ß-2", Charset::Latin1),
            "=?iso-8859-1?Q?St=F6rung=3A_Knoten_=DF-2?="
        );
        assert_eq!(
            encode_words("Größe", Charset::Utf8),
            "=?utf-8?Q?Gr=C3=B6=C3=9Fe?="
        );
        // Long titles become several words of at most 75 characters, never
        // splitting a character.
        let long = "ü".repeat(60);
        let enc = encode_words(&long, Charset::Utf8);
        for w in enc.split(' ') {
            assert!(w.len() <= 75, "{w}");
            assert!(w.starts_with("=?utf-8?Q?") && w.ends_with("?="));
            assert_eq!(w.matches('=').count() % 2, 0, "{w}");
        }
        assert_eq!(enc.matches("=C3=BC").count(), 60);
        assert_eq!(encode_words("", Charset::Latin1), "=?iso-8859-1?Q??=");
    }

    #[test]
    fn title_encoding_follows_the_setting() {
        let mut config = MailConfig::new("m", &["a@x"], "plain title");
        let r = MailRecord::for_alert(&alert(), "c1", "s1", &config.title, 1);
        assert!(text(&render(&r, &config).data).contains("Subject: plain title\r\n"));
        config.encode_title = true;
        assert!(
            text(&render(&r, &config).data).contains("Subject: =?iso-8859-1?Q?plain_title?=\r\n")
        );
        // Not asked to, but 8-bit bytes cannot go raw into a header.
        config.encode_title = false;
        let r = MailRecord::for_alert(&alert(), "c1", "s1", "Übernahme", 1);
        assert!(text(&render(&r, &config).data).contains("Subject: =?iso-8859-1?Q?=DCbernahme?="));
    }

    #[test]
    fn latin1_body() {
        let config = MailConfig::new("m", &["a@x"], "t");
        let mut a = alert();
        a.message = "Gruppe läuft".into();
        let r = MailRecord::for_alert(&a, "c1", "s1", "t", 1);
        let t = text(&render(&r, &config).data);
        // Quoted-printable or base64, never raw 8-bit.
        assert!(render(&r, &config).data.is_ascii(), "{t}");
        assert!(t.contains("Content-Transfer-Encoding"), "{t}");
    }

    #[test]
    fn cut_texts() {
        assert_eq!(cut("abc", 5), "abc");
        assert_eq!(cut("äbcdef", 3), "äbc...");
    }
}
