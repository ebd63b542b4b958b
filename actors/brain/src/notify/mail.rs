//! The mail settings (`alerts.mail` in the configuration) and their checks.
//!
//! Pure: reading `password_file` is the shell's (`LoadPassword` in the
//! `understudy-actors` crate's `notify::mail`). The password never shows in
//! `Debug` output, problems, alerts or logs: it lives in a [`Secret`].

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::problems::Problems;

/// Longest SMTP server name, sender, user name and password, bytes.
pub const MAX_NAME: usize = 63;
/// Longest recipient list, bytes, counting one line end per address after
/// the first (as if written one per line).
pub const MAX_RECIPIENTS: usize = 255;
/// Longest title, bytes.
pub const MAX_TITLE: usize = 127;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "Mail")]
pub struct MailConfig {
    /// SMTP server that takes the report mails: host name or IP address
    /// (at most 63 bytes). Required.
    pub server: String,
    /// Its port (1-65535). Default 25.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Where report mails go: one address per entry, at most 255 bytes
    /// together. Required.
    pub recipients: Vec<String>,
    /// Subject of every report mail (at most 127 bytes). Naming the cluster
    /// here tells at a glance where a mail comes from. Required.
    pub title: String,
    /// Envelope and `From:` address. Default: the first recipient.
    #[serde(default)]
    pub sender: MailSender,
    /// Character set of the subject and body: `iso-8859-1` (default),
    /// `utf-8` or `us-ascii`. Characters the set lacks become `?`.
    #[serde(default = "default_charset")]
    pub charset: String,
    /// Always write the title as an RFC 2047 encoded word. When false a
    /// plain-ASCII title goes as written; any other title is still encoded,
    /// since raw 8-bit bytes are not allowed in a header. Default false.
    #[serde(default)]
    pub encode_title: bool,
    /// How long to wait for the server at each step: connecting, the
    /// greeting and every reply (1-999 s). Default 60.
    #[serde(default = "default_response_wait")]
    pub response_wait_secs: u32,
    /// SMTP authentication with the primary server. Default none.
    #[serde(default)]
    pub authentication: SmtpAuth,
    /// User name for authentication (at most 63 bytes).
    #[serde(default)]
    pub user: Option<String>,
    /// Password for authentication (at most 63 bytes). Prefer
    /// `password_file`, which keeps it out of the configuration.
    #[serde(default)]
    pub password: Option<Secret>,
    /// File holding the password on its first line, readable by its owner
    /// only (mode 0600 or 0400). Instead of `password`.
    #[serde(default)]
    pub password_file: Option<String>,
    /// Server tried when the primary cannot be reached at all (name not
    /// resolved, connection refused or timed out). Never after the primary
    /// answered, so never after an authentication or protocol error, and
    /// always without authentication.
    #[serde(default)]
    pub alternative: Option<AlternativeServer>,
    /// After `alert suspend`, notification resumes by itself after this
    /// many hours (1-99). Default 12.
    #[serde(default = "default_auto_resume")]
    pub auto_resume_hours: u32,
    /// Also mail when these settings change. Default off.
    #[serde(default)]
    pub on_settings_change: bool,
    /// Also mail when notification is suspended or resumed. Default off.
    #[serde(default)]
    pub on_suspend_resume: bool,
    /// Also mail when a group has started. Default off.
    #[serde(default)]
    pub on_group_started: bool,
}

/// The envelope sender and `From:` address.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum MailSender {
    /// The first recipient sends to everyone.
    #[default]
    SameAsFirstRecipient,
    /// This address (at most 63 bytes). Some servers accept only known
    /// senders, and bounces come back here.
    Address(String),
}

/// Which SMTP authentication to use with the primary server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SmtpAuth {
    /// No authentication.
    #[default]
    None,
    /// AUTH LOGIN (the password travels base64-encoded: plain text).
    Login,
    /// AUTH CRAM-MD5 (the password never travels).
    CramMd5,
    /// CRAM-MD5 when the server offers it, LOGIN otherwise.
    Auto,
}

/// The server tried when the primary cannot be reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "AlternativeServer")]
pub struct AlternativeServer {
    /// Host name or IP address (at most 63 bytes).
    pub host: String,
    /// Port (1-65535). Default 25.
    #[serde(default = "default_port")]
    pub port: u16,
}

/// A password: serialised as is (the configuration must round-trip), but
/// never shown by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The password itself, for the SMTP exchange only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

fn default_port() -> u16 {
    25
}
fn default_charset() -> String {
    "iso-8859-1".into()
}
fn default_response_wait() -> u32 {
    60
}
fn default_auto_resume() -> u32 {
    12
}

/// A character set the mails can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    Latin1,
    Utf8,
    Ascii,
}

impl Charset {
    /// Accepts the usual spellings, in any case.
    pub fn parse(name: &str) -> Option<Charset> {
        match name.to_ascii_lowercase().as_str() {
            "iso-8859-1" | "iso8859-1" | "latin1" | "latin-1" => Some(Charset::Latin1),
            "utf-8" | "utf8" => Some(Charset::Utf8),
            "us-ascii" | "ascii" => Some(Charset::Ascii),
            _ => None,
        }
    }

    /// The name written in `Content-Type` and encoded words.
    pub fn mime_name(self) -> &'static str {
        match self {
            Charset::Latin1 => "iso-8859-1",
            Charset::Utf8 => "utf-8",
            Charset::Ascii => "us-ascii",
        }
    }

    /// The bytes of `c` in this set; a character it lacks becomes `?`.
    pub fn encode_char(self, c: char, out: &mut Vec<u8>) {
        let limit = match self {
            Charset::Latin1 => 0xFF,
            Charset::Ascii => 0x7F,
            Charset::Utf8 => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                return;
            }
        };
        let code = c as u32;
        // Below the limit the code point is the byte (Latin-1 is the first
        // 256 code points of Unicode).
        out.push(if code <= limit { code as u8 } else { b'?' });
    }

    pub fn encode(self, text: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len());
        for c in text.chars() {
            self.encode_char(c, &mut out);
        }
        out
    }
}

impl MailConfig {
    /// Settings with the given required fields and every default.
    pub fn new(server: &str, recipients: &[&str], title: &str) -> MailConfig {
        MailConfig {
            server: server.into(),
            port: default_port(),
            recipients: recipients.iter().map(|r| r.to_string()).collect(),
            title: title.into(),
            sender: MailSender::default(),
            charset: default_charset(),
            encode_title: false,
            response_wait_secs: default_response_wait(),
            authentication: SmtpAuth::None,
            user: None,
            password: None,
            password_file: None,
            alternative: None,
            auto_resume_hours: default_auto_resume(),
            on_settings_change: false,
            on_suspend_resume: false,
            on_group_started: false,
        }
    }

    /// The envelope sender and `From:` address.
    pub fn sender_address(&self) -> &str {
        match &self.sender {
            MailSender::Address(a) => a,
            MailSender::SameAsFirstRecipient => self
                .recipients
                .first()
                .map(String::as_str)
                .unwrap_or_default(),
        }
    }

    /// The charset; iso-8859-1 when the name is unknown (validation reports
    /// that case).
    pub fn charset(&self) -> Charset {
        Charset::parse(&self.charset).unwrap_or(Charset::Latin1)
    }

    /// Records every problem of these settings; `path` is where they sit in
    /// the configuration (`alerts.mail`).
    pub fn validate(&self, path: &str, problems: &mut Problems) {
        check_host(&format!("{path}.server"), &self.server, problems);
        crate::host::validate_port(&format!("{path}.port"), self.port, problems);

        if self.recipients.is_empty() {
            problems.push(
                format!("{path}.recipients"),
                "at least one address is needed",
            );
        }
        for (i, r) in self.recipients.iter().enumerate() {
            check_address(&format!("{path}.recipients[{i}]"), r, problems);
        }
        let together: usize = self.recipients.iter().map(|r| r.len()).sum::<usize>()
            + self.recipients.len().saturating_sub(1);
        if together > MAX_RECIPIENTS {
            problems.push(
                format!("{path}.recipients"),
                format!("{together} bytes together, at most {MAX_RECIPIENTS}"),
            );
        }

        let title = format!("{path}.title");
        if self.title.trim().is_empty() {
            problems.push(&title, "must not be empty");
        } else if self.title.len() > MAX_TITLE {
            problems.push(
                &title,
                format!("{} bytes, at most {MAX_TITLE}", self.title.len()),
            );
        } else if self.title.chars().any(char::is_control) {
            problems.push(&title, "must be one line without control characters");
        }

        if let MailSender::Address(a) = &self.sender {
            let p = format!("{path}.sender");
            check_address(&p, a, problems);
            if a.len() > MAX_NAME {
                problems.push(p, format!("{} bytes, at most {MAX_NAME}", a.len()));
            }
        }

        if Charset::parse(&self.charset).is_none() {
            problems.push(
                format!("{path}.charset"),
                format!(
                    "\"{}\" is not supported (iso-8859-1, utf-8 or us-ascii)",
                    self.charset
                ),
            );
        }
        problems.range(
            &format!("{path}.response_wait_secs"),
            self.response_wait_secs,
            1,
            999,
        );
        problems.range(
            &format!("{path}.auto_resume_hours"),
            self.auto_resume_hours,
            1,
            99,
        );

        self.validate_credentials(path, problems);

        if let Some(alt) = &self.alternative {
            check_host(&format!("{path}.alternative.host"), &alt.host, problems);
            crate::host::validate_port(&format!("{path}.alternative.port"), alt.port, problems);
        }
    }

    fn validate_credentials(&self, path: &str, problems: &mut Problems) {
        let user_path = format!("{path}.user");
        let password_path = format!("{path}.password");
        if let Some(user) = &self.user {
            if user.len() > MAX_NAME {
                problems.push(
                    &user_path,
                    format!("{} bytes, at most {MAX_NAME}", user.len()),
                );
            }
            if user.chars().any(|c| c.is_whitespace() || c.is_control()) {
                problems.push(&user_path, "must not contain spaces or control characters");
            }
        }
        // Never quote the password, not even in part.
        if let Some(pw) = &self.password {
            if pw.expose().len() > MAX_NAME {
                problems.push(&password_path, format!("longer than {MAX_NAME} bytes"));
            }
            if pw.expose().chars().any(char::is_control) {
                problems.push(&password_path, "must not contain control characters");
            }
        }
        if let Some(file) = &self.password_file {
            if file.trim().is_empty() {
                problems.push(format!("{path}.password_file"), "must not be empty");
            }
            if self.password.is_some() {
                problems.push(
                    format!("{path}.password_file"),
                    "give either password or password_file, not both",
                );
            }
        }
        if self.authentication != SmtpAuth::None {
            if self.user.as_deref().is_none_or(str::is_empty) {
                problems.push(&user_path, "authentication needs a user name");
            }
            if self.password.is_none() && self.password_file.is_none() {
                problems.push(
                    &password_path,
                    "authentication needs a password (or a password_file)",
                );
            }
        }
    }
}

/// An SMTP server field: an IP literal or a host name, at most 63 bytes.
fn check_host(path: &str, host: &str, problems: &mut Problems) {
    if host.is_empty() {
        problems.push(path, "must not be empty");
        return;
    }
    if host.len() > MAX_NAME {
        problems.push(path, format!("{} bytes, at most {MAX_NAME}", host.len()));
        return;
    }
    crate::host::validate_host(path, host, problems);
}

/// A mail address as the envelope needs it: `local@domain`, printable ASCII
/// or UTF-8 without spaces, angle brackets or control characters.
fn check_address(path: &str, addr: &str, problems: &mut Problems) {
    let bad_char = addr
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | '"'));
    let shape_ok = match addr.rsplit_once('@') {
        Some((local, domain)) => !local.is_empty() && !domain.is_empty() && !domain.contains('@'),
        None => false,
    };
    if addr.is_empty() {
        problems.push(path, "must not be empty");
    } else if bad_char || !shape_ok {
        problems.push(
            path,
            format!("\"{addr}\" is not a mail address (user@domain)"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads settings as the configuration loader does (implicit `Some`).
    fn parse(text: &str) -> MailConfig {
        let options = ron::Options::default()
            .with_default_extension(ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES)
            .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
        options.from_str(text).unwrap()
    }

    fn problem_paths(c: &MailConfig) -> Vec<String> {
        let mut p = Problems::default();
        c.validate("alerts.mail", &mut p);
        p.into_vec().into_iter().map(|p| p.path).collect()
    }

    #[test]
    fn defaults_follow_the_guide() {
        let c =
            parse(r#"Mail(server: "mail.example", recipients: ["ops@example.com"], title: "c1")"#);
        assert_eq!(
            c,
            MailConfig::new("mail.example", &["ops@example.com"], "c1")
        );
        assert_eq!(c.port, 25);
        assert_eq!(c.charset, "iso-8859-1");
        assert!(!c.encode_title);
        assert_eq!(c.response_wait_secs, 60);
        assert_eq!(c.authentication, SmtpAuth::None);
        assert_eq!(c.auto_resume_hours, 12);
        assert_eq!(c.sender, MailSender::SameAsFirstRecipient);
        assert!(!c.on_settings_change && !c.on_suspend_resume && !c.on_group_started);
        assert_eq!(c.sender_address(), "ops@example.com");
        assert!(problem_paths(&c).is_empty());
    }

    #[test]
    fn every_field_reads() {
        let c = parse(
            r#"Mail(server: "10.0.0.5", port: 587, recipients: ["a@x.test", "b@x.test"],
                    title: "cluster c1", sender: Address("ha@x.test"), charset: "utf-8",
                    encode_title: true, response_wait_secs: 5, authentication: CramMd5,
                    user: "alice", password: "s3cret",
                    alternative: (host: "mail2.x.test", port: 2525), auto_resume_hours: 3,
                    on_settings_change: true, on_suspend_resume: true, on_group_started: true)"#,
        );
        assert_eq!(c.sender_address(), "ha@x.test");
        assert_eq!(c.charset(), Charset::Utf8);
        assert_eq!(c.password.as_ref().map(Secret::expose), Some("s3cret"));
        assert_eq!(
            c.alternative,
            Some(AlternativeServer {
                host: "mail2.x.test".into(),
                port: 2525
            })
        );
        assert!(problem_paths(&c).is_empty());
        // The alternative's port defaults to 25 too.
        let c = parse(
            r#"Mail(server: "m", recipients: ["a@x"], title: "t", alternative: (host: "m2"))"#,
        );
        assert_eq!(c.alternative.unwrap().port, 25);
    }

    #[test]
    fn the_password_never_shows() {
        let mut c = MailConfig::new("m", &["a@x"], "t");
        c.password = Some(Secret::new("hunter2-secret"));
        c.password_file = Some(String::new());
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        let mut p = Problems::default();
        c.password = Some(Secret::new(format!("hunter2-{}\n", "x".repeat(70))));
        c.validate("alerts.mail", &mut p);
        assert!(p.0.iter().all(|p| !p.message.contains("hunter2")), "{p:?}");
        // It must survive a round trip, though (digests, pushes to peers).
        let text = ron::to_string(&c).unwrap();
        assert!(text.contains("hunter2"));
    }

    #[test]
    fn problems_carry_field_paths() {
        let mut c = MailConfig::new("bad host", &[], "");
        c.port = 0;
        c.charset = "koi8-r".into();
        c.response_wait_secs = 1000;
        c.auto_resume_hours = 0;
        c.sender = MailSender::Address("nobody".into());
        c.authentication = SmtpAuth::Login;
        c.alternative = Some(AlternativeServer {
            host: "x".repeat(64),
            port: 0,
        });
        assert_eq!(
            problem_paths(&c),
            [
                "alerts.mail.server",
                "alerts.mail.port",
                "alerts.mail.recipients",
                "alerts.mail.title",
                "alerts.mail.sender",
                "alerts.mail.charset",
                "alerts.mail.response_wait_secs",
                "alerts.mail.auto_resume_hours",
                "alerts.mail.user",
                "alerts.mail.password",
                "alerts.mail.alternative.host",
                "alerts.mail.alternative.port",
            ]
        );
    }

    #[test]
    fn lengths_are_bounded() {
        let long = format!("{}@example.com", "u".repeat(60));
        let c = MailConfig::new(
            &"m".repeat(64),
            &[&long, &long, &long, &long],
            &"t".repeat(128),
        );
        assert_eq!(
            problem_paths(&c),
            [
                "alerts.mail.server",
                "alerts.mail.recipients",
                "alerts.mail.title"
            ]
        );
        // 63 bytes of server and 127 of title are fine.
        let c = MailConfig::new(&"m".repeat(63), &["a@x"], &"t".repeat(127));
        assert!(problem_paths(&c).is_empty());

        let mut c = MailConfig::new("m", &["a@x"], "t");
        c.user = Some("u".repeat(64));
        c.password = Some(Secret::new("p".repeat(64)));
        assert_eq!(
            problem_paths(&c),
            ["alerts.mail.user", "alerts.mail.password"]
        );
    }

    #[test]
    fn recipients_are_checked_one_by_one() {
        let c = MailConfig::new("m", &["ok@x.test", "two words@x", "", "a@b@"], "t");
        assert_eq!(
            problem_paths(&c),
            [
                "alerts.mail.recipients[1]",
                "alerts.mail.recipients[2]",
                "alerts.mail.recipients[3]"
            ]
        );
    }

    #[test]
    fn credentials() {
        let mut c = MailConfig::new("m", &["a@x"], "t");
        c.authentication = SmtpAuth::Auto;
        c.user = Some("alice".into());
        c.password_file = Some("/etc/understudy/mail.pw".into());
        assert!(problem_paths(&c).is_empty());
        c.password = Some(Secret::new("x"));
        assert_eq!(problem_paths(&c), ["alerts.mail.password_file"]);
        c.user = Some("al ice".into());
        c.password_file = None;
        assert_eq!(problem_paths(&c), ["alerts.mail.user"]);
    }

    #[test]
    fn title_is_one_line() {
        let c = MailConfig::new("m", &["a@x"], "two\r\nBcc: evil@x");
        assert_eq!(problem_paths(&c), ["alerts.mail.title"]);
    }

    #[test]
    fn charsets() {
        assert_eq!(Charset::parse("ISO-8859-1"), Some(Charset::Latin1));
        assert_eq!(Charset::parse("UTF-8"), Some(Charset::Utf8));
        assert_eq!(Charset::parse("koi8-r"), None);
        assert_eq!(Charset::Latin1.encode("Größe €"), b"Gr\xF6\xDFe ?");
        assert_eq!(Charset::Ascii.encode("Größe"), b"Gr??e");
        assert_eq!(Charset::Utf8.encode("€"), "€".as_bytes());
    }
}
