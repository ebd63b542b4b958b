//! The mail notifier against a real SMTP server: aiosmtpd, run by
//! `tests/fixtures/smtpd.py` (LOGIN and CRAM-MD5, refusals, a server that
//! never greets). Every received mail is a file the test reads back.
//!
//! Each test runs the notifier in an actix System of its own, with a real
//! alert log, and waits for the `MailSent` (alert 5) / `MailFailed`
//! (alert 6) events or for files, each wait with a deadline. Nothing sleeps
//! to synchronise and nothing asserts on timing. Without python3 and
//! aiosmtpd every test skips (tests/common/skip.rs).

#[path = "../../tests/common/skip.rs"]
mod skip;

use std::fs;
use std::future::Future;
use std::net::Ipv4Addr;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde_json::Value;

use understudy_actors::model::catalog::{Alert, Level};
use understudy_actors::notify::alert_log::{AlertLog, AlertLogHandle, Alerter, DEFAULT_MAX_BYTES};
use understudy_actors::notify::mail::{
    AlternativeServer, GetMailQueue, MailConfig, MailNotifier, MailQueue, MailSender, Reconfigure,
    RetryPolicy, Secret, SendTest, SmtpAuth,
};
use understudy_actors::notify::Notify;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/smtpd.py");
const DEADLINE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(20);
/// Fast retries, so "server back" tests finish quickly.
const FAST: RetryPolicy = RetryPolicy {
    first: Duration::from_millis(200),
    max: Duration::from_secs(1),
};

// ---------------------------------------------------------------------------
// environment

macro_rules! require_env {
    () => {
        if let Some(missing) = skip::need_python_module("aiosmtpd") {
            return missing.skip();
        }
    };
}

/// A fresh folder under /tmp, removed on drop.
struct TestDir(PathBuf);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl TestDir {
    fn new(tag: &str) -> TestDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let p = PathBuf::from(format!("/tmp/us-mail-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TestDir(p)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !check() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(POLL);
    }
}

/// A port on 127.0.0.1 that refuses connections while this is held: a TCP
/// socket bound to it that does not listen (so nothing else takes it).
struct ClosedPort {
    socket: Option<OwnedFd>,
    port: u16,
}

impl ClosedPort {
    fn new() -> ClosedPort {
        // SAFETY: plain socket calls on a descriptor owned here, with a
        // sockaddr_in of the size passed.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
            let socket = OwnedFd::from_raw_fd(fd);
            let mut addr: libc::sockaddr_in = std::mem::zeroed();
            addr.sin_family = libc::AF_INET as libc::sa_family_t;
            addr.sin_addr.s_addr = u32::from(Ipv4Addr::LOCALHOST).to_be();
            let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            let at = &mut addr as *mut libc::sockaddr_in as *mut libc::sockaddr;
            assert_eq!(
                libc::bind(fd, at, len),
                0,
                "bind: {}",
                std::io::Error::last_os_error()
            );
            assert_eq!(libc::getsockname(fd, at, &mut len), 0);
            ClosedPort {
                socket: Some(socket),
                port: u16::from_be(addr.sin_port),
            }
        }
    }

    /// Lets the port go, for a server to listen on.
    fn release(&mut self) -> u16 {
        self.socket = None;
        self.port
    }
}

// ---------------------------------------------------------------------------
// the SMTP server

/// One mail as the server received it.
#[derive(Debug)]
struct Received {
    mail_from: String,
    rcpt_tos: Vec<String>,
    data: Vec<u8>,
    auth_mechanism: Option<String>,
    auth_user: Option<String>,
}

impl Received {
    /// The text of the raw mail (header values are ASCII).
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }

    /// The value of header `name` (first occurrence, unfolded).
    fn header(&self, name: &str) -> Option<String> {
        let text = self.text();
        let head = text.split("\r\n\r\n").next().unwrap_or_default();
        let mut lines = head.split("\r\n").peekable();
        while let Some(line) = lines.next() {
            let Some((n, v)) = line.split_once(':') else {
                continue;
            };
            if n.eq_ignore_ascii_case(name) {
                let mut value = v.trim().to_string();
                while lines.peek().is_some_and(|l| l.starts_with([' ', '\t'])) {
                    value.push(' ');
                    value.push_str(lines.next().unwrap().trim());
                }
                return Some(value);
            }
        }
        None
    }

    /// The body after the headers, quoted-printable decoded when so marked.
    fn body(&self) -> Vec<u8> {
        let split = self
            .data
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(self.data.len(), |i| i + 4);
        let raw = &self.data[split..];
        match self.header("Content-Transfer-Encoding").as_deref() {
            Some(cte) if cte.eq_ignore_ascii_case("quoted-printable") => qp_decode(raw),
            _ => raw.to_vec(),
        }
    }
}

fn qp_decode(raw: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'=' {
            if raw[i + 1..].starts_with(b"\r\n") {
                i += 3;
                continue;
            }
            if let (Some(h), Some(l)) = (
                raw.get(i + 1).copied().and_then(hex),
                raw.get(i + 2).copied().and_then(hex),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(raw[i]);
        i += 1;
    }
    out
}

/// `tests/fixtures/smtpd.py`, killed on drop.
struct Smtpd {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Smtpd {
    /// Starts the server on a free port, or on `port`, with `args`; returns
    /// once it listens.
    fn start(dir: PathBuf, port: Option<u16>, args: &[&str]) -> Smtpd {
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let log = fs::File::create(dir.with_extension("log")).unwrap();
        let mut cmd = Command::new("python3");
        cmd.arg(FIXTURE)
            .arg(&dir)
            .args(["--port", &port.unwrap_or(0).to_string()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let mut child = cmd.spawn().expect("start python3");
        let port_file = dir.join("port");
        wait_for("the SMTP server to listen", || {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "the SMTP server exited ({status}): {}",
                    fs::read_to_string(dir.with_extension("log")).unwrap_or_default()
                );
            }
            port_file.exists()
        });
        let port = fs::read_to_string(&port_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        Smtpd { child, dir, port }
    }

    /// Every mail received so far, in order of arrival.
    fn received(&self) -> Vec<Received> {
        let mut names: Vec<PathBuf> = fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let n = p.file_name().unwrap().to_string_lossy();
                n.starts_with("msg-") && n.ends_with(".json")
            })
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| {
                let v: Value = serde_json::from_slice(&fs::read(p).unwrap()).unwrap();
                let text = |k: &str| v[k].as_str().map(str::to_string);
                Received {
                    mail_from: text("mail_from").unwrap(),
                    rcpt_tos: v["rcpt_tos"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| r.as_str().unwrap().to_string())
                        .collect(),
                    data: fs::read(text("data_file").unwrap()).unwrap(),
                    auth_mechanism: text("auth_mechanism"),
                    auth_user: text("auth_user"),
                }
            })
            .collect()
    }
}

impl Drop for Smtpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// a small SMTP peer in Rust, for sessions of many mails

/// A mail the peer accepted: the connection it came on (counted from 0)
/// and its raw data.
#[derive(Debug, Clone)]
struct Taken {
    connection: usize,
    data: String,
}

/// An SMTP server on a thread of its own (a thread per connection):
/// offers PIPELINING, accepts every command and answers each mail's data
/// with `verdict(data)` (250, or a refusal). Needs no aiosmtpd; its listener ends with the test
/// process.
struct Peer {
    port: u16,
    taken: std::sync::Arc<std::sync::Mutex<Vec<Taken>>>,
    connections: std::sync::Arc<AtomicUsize>,
}

impl Peer {
    fn start(verdict: impl Fn(&str) -> &'static str + Send + Sync + 'static) -> Peer {
        use std::io::{BufRead, BufReader, Write};
        use std::sync::{Arc, Mutex};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let taken = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let verdict = Arc::new(verdict);
        let (t, c) = (taken.clone(), connections.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let number = c.fetch_add(1, Ordering::SeqCst);
                let (taken, verdict) = (t.clone(), verdict.clone());
                std::thread::spawn(move || -> std::io::Result<()> {
                    let mut out = conn.try_clone().unwrap();
                    let mut lines = BufReader::new(conn);
                    let mut say = |text: &str| out.write_all(format!("{text}\r\n").as_bytes());
                    say("220 peer.test ready")?;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if lines.read_line(&mut line)? == 0 {
                            return Ok(());
                        }
                        let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
                        match verb.as_str() {
                            "QUIT" => return say("221 bye"),
                            // As most servers do; the peer still reads
                            // one command at a time.
                            "EHLO" => say("250-peer.test\r\n250 PIPELINING")?,
                            "DATA" => {
                                say("354 go on")?;
                                let mut data = String::new();
                                loop {
                                    line.clear();
                                    if lines.read_line(&mut line)? == 0 {
                                        return Ok(());
                                    }
                                    if line == ".\r\n" {
                                        break;
                                    }
                                    data.push_str(&line);
                                }
                                let reply = verdict(&data);
                                if reply.starts_with('2') {
                                    taken.lock().unwrap().push(Taken {
                                        connection: number,
                                        data,
                                    });
                                }
                                say(reply)?;
                            }
                            _ => say("250 ok")?,
                        }
                    }
                });
            }
        });
        Peer {
            port,
            taken,
            connections,
        }
    }

    fn taken(&self) -> Vec<Taken> {
        self.taken.lock().unwrap().clone()
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// The `N` of the `burst N` text in each mail, in order of arrival.
fn burst_numbers(taken: &[Taken]) -> Vec<usize> {
    taken
        .iter()
        .map(|t| {
            let at = t.data.find("burst ").expect("a burst mail") + "burst ".len();
            t.data[at..at + 4].parse().unwrap()
        })
        .collect()
}

// ---------------------------------------------------------------------------
// the notifier

/// A real alert log in `dir`, and an alerter for server s1.
fn alerter(dir: &Path) -> Alerter {
    let log = AlertLog::open(dir, DEFAULT_MAX_BYTES).unwrap();
    Alerter {
        log: AlertLogHandle::spawn(log).unwrap(),
        server: "s1".into(),
        router: None,
    }
}

/// Runs `f` in an actix System of its own, dropped (with every actor and
/// future in it) when `f` returns.
fn in_system<F: Future>(f: F) -> F::Output {
    System::new().block_on(f)
}

fn config(port: u16) -> MailConfig {
    let mut c = MailConfig::new("127.0.0.1", &["ops@x.test"], "cluster c1");
    c.port = port;
    c.response_wait_secs = 2;
    c
}

fn notifier(config: MailConfig, state: &Path, alerter: &Alerter) -> Addr<MailNotifier> {
    MailNotifier::new(config, state, alerter.clone())
        .unwrap()
        .with_retry(FAST)
        .start()
}

fn alert(message: &str) -> Alert {
    Alert {
        time: "2026-11-22T03:00:00.000Z".into(),
        server: "s2".into(),
        module: "rc".into(),
        event_id: 32,
        level: Level::Error,
        message: message.into(),
    }
}

fn notify(message: &str) -> Notify {
    Notify {
        alert: alert(message),
        cluster: "c1".into(),
    }
}

/// Alerts `alert <id>` of the log, oldest first.
async fn mail_events(log: &AlertLogHandle, id: u32) -> Vec<String> {
    log.newest(10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.module == "alert" && a.event_id == id)
        .map(|a| a.message)
        .collect()
}

/// Waits until the log holds `n` alerts `alert <id>`; returns them.
async fn wait_events(log: &AlertLogHandle, id: u32, n: usize) -> Vec<String> {
    let end = Instant::now() + DEADLINE;
    loop {
        let found = mail_events(log, id).await;
        if found.len() >= n {
            return found;
        }
        assert!(
            Instant::now() < end,
            "timed out waiting for {n} x alert {id}: {found:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until the spool holds `n` mails.
async fn wait_spool(state: &Path, n: usize) {
    let end = Instant::now() + DEADLINE;
    while spool_files(state).len() != n {
        assert!(
            Instant::now() < end,
            "timed out waiting for {n} spooled mails"
        );
        tokio::time::sleep(POLL).await;
    }
}

fn spool_files(state: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(state.join("mail-spool"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    files.sort();
    files
}

// ---------------------------------------------------------------------------
// tests

#[test]
fn mail_arrives_with_headers_charset_and_body() {
    require_env!();
    let t = TestDir::new("content");
    let smtpd = Smtpd::start(t.join("smtpd"), None, &[]);
    let log = alerter(&t.join("log"));
    let state = t.join("state");
    let mut c = config(smtpd.port);
    c.recipients = vec!["ops@x.test".into(), "dev@x.test".into()];
    c.sender = MailSender::Address("ha@x.test".into());
    c.title = "Störung im Cluster c1".into();
    c.encode_title = true;

    let sent = in_system(async {
        let mail = notifier(c, &state, &log);
        mail.send(notify("Gruppe läuft nicht")).await.unwrap();
        wait_events(&log.log, 5, 1).await
    });
    let port = smtpd.port;
    assert_eq!(
        sent,
        [format!(
            "report mail sent through 127.0.0.1:{port}: [rc 32: Gruppe läuft nicht]"
        )]
    );
    assert!(spool_files(&state).is_empty(), "sent mails leave the spool");

    let got = smtpd.received();
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m.mail_from, "ha@x.test");
    assert_eq!(m.rcpt_tos, ["ops@x.test", "dev@x.test"]);
    assert_eq!(m.auth_mechanism, None);
    assert_eq!(m.header("From").unwrap(), "<ha@x.test>");
    assert_eq!(m.header("To").unwrap(), "<ops@x.test>, <dev@x.test>");
    assert_eq!(
        m.header("Subject").unwrap(),
        "=?iso-8859-1?Q?St=F6rung_im_Cluster_c1?="
    );
    let id = m.header("Message-ID").unwrap();
    assert!(
        id.starts_with('<') && id.ends_with("@s1.understudy>"),
        "{id}"
    );
    assert!(m.header("Date").is_some());
    let ctype = m.header("Content-Type").unwrap();
    assert!(ctype.contains("charset=\"iso-8859-1\""), "{ctype}");
    // The body in Latin-1: the alert, then who sent it and when.
    let body = m.body();
    let text: String = body.iter().map(|&b| b as char).collect();
    assert!(text.starts_with("Gruppe läuft nicht\r\n"), "{text}");
    assert!(
        text.contains("Raised:  2026-11-22T03:00:00.000Z on server s2"),
        "{text}"
    );
    assert!(text.contains("Cluster: c1"), "{text}");
    assert!(text.contains("Sent by server s1 at 20"), "{text}");
}

#[test]
fn utf8_mail() {
    require_env!();
    let t = TestDir::new("utf8");
    let smtpd = Smtpd::start(t.join("smtpd"), None, &[]);
    let log = alerter(&t.join("log"));
    let mut c = config(smtpd.port);
    c.charset = "utf-8".into();
    c.title = "plain title".into();
    in_system(async {
        let mail = notifier(c, &t.join("state"), &log);
        mail.send(notify("Größe € überschritten")).await.unwrap();
        wait_events(&log.log, 5, 1).await
    });
    let m = &smtpd.received()[0];
    // Not asked to encode, and plain ASCII: the title as written.
    assert_eq!(m.header("Subject").unwrap(), "plain title");
    assert!(m
        .header("Content-Type")
        .unwrap()
        .contains("charset=\"utf-8\""));
    let body = String::from_utf8(m.body()).unwrap();
    assert!(body.starts_with("Größe € überschritten\r\n"), "{body}");
}

#[test]
fn login_cram_md5_and_auto() {
    require_env!();
    let t = TestDir::new("auth");
    let both = Smtpd::start(
        t.join("both"),
        None,
        &["--auth", "login,cram-md5", "--auth-required"],
    );
    let login_only = Smtpd::start(
        t.join("login"),
        None,
        &["--auth", "login", "--auth-required"],
    );
    let log = alerter(&t.join("log"));
    let with_auth = |port: u16, mode: SmtpAuth| {
        let mut c = config(port);
        c.authentication = mode;
        c.user = Some("alice".into());
        c.password = Some(Secret::new("s3cret"));
        c
    };
    in_system(async {
        let cases = [
            (both.port, SmtpAuth::Login),
            (both.port, SmtpAuth::CramMd5),
            (both.port, SmtpAuth::Auto),
            (login_only.port, SmtpAuth::Auto),
        ];
        for (i, (port, mode)) in cases.into_iter().enumerate() {
            let mail = notifier(with_auth(port, mode), &t.join(&format!("state{i}")), &log);
            mail.send(notify(&format!("case {i}"))).await.unwrap();
            wait_events(&log.log, 5, i + 1).await;
        }
    });
    let mechanisms = |s: &Smtpd| -> Vec<(Option<String>, Option<String>)> {
        s.received()
            .into_iter()
            .map(|m| (m.auth_mechanism, m.auth_user))
            .collect()
    };
    let alice = || Some("alice".to_string());
    assert_eq!(
        mechanisms(&both),
        [
            (Some("LOGIN".into()), alice()),
            (Some("CRAM-MD5".into()), alice()),
            // Auto prefers CRAM-MD5 when both are offered.
            (Some("CRAM-MD5".into()), alice()),
        ]
    );
    assert_eq!(mechanisms(&login_only), [(Some("LOGIN".into()), alice())]);
}

#[test]
fn unreachable_primary_falls_back_to_the_alternative() {
    require_env!();
    let t = TestDir::new("alt");
    let closed = ClosedPort::new();
    let alternative = Smtpd::start(t.join("alt"), None, &[]);
    let log = alerter(&t.join("log"));
    let mut c = config(closed.port);
    // The primary would need authentication; the alternative never gets it.
    c.authentication = SmtpAuth::Auto;
    c.user = Some("alice".into());
    c.password = Some(Secret::new("s3cret"));
    c.alternative = Some(AlternativeServer {
        host: "127.0.0.1".into(),
        port: alternative.port,
    });
    let sent = in_system(async {
        let mail = notifier(c, &t.join("state"), &log);
        mail.send(notify("server s2 is down")).await.unwrap();
        wait_events(&log.log, 5, 1).await
    });
    assert!(
        sent[0].starts_with(&format!(
            "report mail sent through 127.0.0.1:{}:",
            alternative.port
        )),
        "{sent:?}"
    );
    let got = alternative.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].auth_mechanism, None);
}

#[test]
fn authentication_failure_is_not_sent_to_the_alternative() {
    require_env!();
    let t = TestDir::new("authfail");
    let primary = Smtpd::start(
        t.join("primary"),
        None,
        &["--auth", "login,cram-md5", "--refuse-auth"],
    );
    let alternative = Smtpd::start(t.join("alt"), None, &[]);
    let log = alerter(&t.join("log"));
    let state = t.join("state");
    let mut c = config(primary.port);
    c.authentication = SmtpAuth::CramMd5;
    c.user = Some("alice".into());
    c.password = Some(Secret::new("s3cret"));
    c.alternative = Some(AlternativeServer {
        host: "127.0.0.1".into(),
        port: alternative.port,
    });
    let failed = in_system(async {
        let mail = notifier(c, &state, &log);
        mail.send(notify("resource app failed")).await.unwrap();
        wait_events(&log.log, 6, 1).await
    });
    assert_eq!(
        failed,
        ["report mail not sent: authentication failed (user alice): 535 5.7.8 Authentication credentials invalid: [rc 32: resource app failed]"]
    );
    assert!(!failed[0].contains("s3cret"));
    // The attempt is over and the alternative was not asked.
    assert!(alternative.received().is_empty());
    assert!(primary.received().is_empty());
    assert_eq!(spool_files(&state).len(), 1, "the mail stays spooled");
}

#[test]
fn a_server_that_never_greets_fails_after_the_response_wait() {
    require_env!();
    let t = TestDir::new("silent");
    let silent = Smtpd::start(t.join("silent"), None, &["--silent"]);
    let log = alerter(&t.join("log"));
    let mut c = config(silent.port);
    c.response_wait_secs = 1;
    let failed = in_system(async {
        let mail = notifier(c, &t.join("state"), &log);
        mail.send(notify("server s2 is down")).await.unwrap();
        wait_events(&log.log, 6, 1).await
    });
    assert_eq!(
        failed,
        [format!(
            "report mail not sent: no response from 127.0.0.1:{} within 1 s (greeting): [rc 32: server s2 is down]",
            silent.port
        )]
    );
}

#[test]
fn refusals_550_and_553_name_code_and_step() {
    require_env!();
    let t = TestDir::new("refuse");
    let rcpt = Smtpd::start(t.join("rcpt"), None, &["--reject-rcpt", "550"]);
    let sender = Smtpd::start(t.join("sender"), None, &["--reject-mail", "553"]);
    let log = alerter(&t.join("log"));
    let failed = in_system(async {
        let a = notifier(config(rcpt.port), &t.join("state-a"), &log);
        a.send(notify("first")).await.unwrap();
        wait_events(&log.log, 6, 1).await;
        let b = notifier(config(sender.port), &t.join("state-b"), &log);
        b.send(notify("second")).await.unwrap();
        wait_events(&log.log, 6, 2).await
    });
    assert_eq!(
        failed[..2],
        [
            format!(
                "report mail not sent: SMTP error from 127.0.0.1:{} at RCPT TO: 550 5.7.1 Relaying denied for this client: [rc 32: first]",
                rcpt.port
            ),
            format!(
                "report mail not sent: SMTP error from 127.0.0.1:{} at MAIL FROM: 553 5.1.8 Sender address rejected: [rc 32: second]",
                sender.port
            ),
        ]
    );
}

#[test]
fn mails_wait_in_the_spool_while_the_server_is_down() {
    require_env!();
    let t = TestDir::new("down");
    let mut closed = ClosedPort::new();
    let log = alerter(&t.join("log"));
    let state = t.join("state");
    let c = config(closed.port);
    let (smtpd, sent) = in_system(async {
        let mail = notifier(c, &state, &log);
        for n in 1..=3 {
            mail.send(notify(&format!("alert {n}"))).await.unwrap();
        }
        let failed = wait_events(&log.log, 6, 1).await;
        assert!(failed[0].contains("refused"), "{failed:?}");
        wait_spool(&state, 3).await;
        // The server comes up on the port the notifier keeps trying.
        let port = closed.release();
        let smtpd = Smtpd::start(t.join("smtpd"), Some(port), &[]);
        let sent = wait_events(&log.log, 5, 3).await;
        (smtpd, sent)
    });
    // Only the oldest mail was tried while the server was down, and the
    // same cause is not raised again on every retry.
    let failed = in_system(mail_events(&log.log, 6));
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(sent[0].ends_with("[rc 32: alert 1]"), "{sent:?}");
    assert!(spool_files(&state).is_empty());
    // Delivered once each, in order.
    let bodies: Vec<String> = smtpd
        .received()
        .iter()
        .map(|m| {
            String::from_utf8_lossy(&m.body())
                .lines()
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(bodies, ["alert 1", "alert 2", "alert 3"]);
}

#[test]
fn the_spool_survives_a_restart() {
    require_env!();
    let t = TestDir::new("restart");
    let mut closed = ClosedPort::new();
    let log = alerter(&t.join("log"));
    let state = t.join("state");
    let c = config(closed.port);

    // First life: the server is down, the mail waits in the spool.
    let c1 = c.clone();
    in_system(async {
        let mail = notifier(c1, &state, &log);
        mail.send(notify("before the restart")).await.unwrap();
        wait_events(&log.log, 6, 1).await;
    });
    let files = spool_files(&state);
    assert_eq!(files.len(), 1);
    let spooled: Value = serde_json::from_slice(&fs::read(&files[0]).unwrap()).unwrap();
    let id = spooled["message_id"].as_str().unwrap().to_string();

    // Second life, on the same state folder, with the server up.
    let port = closed.release();
    let smtpd = Smtpd::start(t.join("smtpd"), Some(port), &[]);
    in_system(async {
        let _mail = notifier(c, &state, &log);
        wait_events(&log.log, 5, 1).await;
    });
    let got = smtpd.received();
    assert_eq!(got.len(), 1, "delivered once");
    assert_eq!(got[0].header("Message-ID").unwrap(), format!("<{id}>"));
    assert!(spool_files(&state).is_empty());
}

#[test]
fn test_mail_answers_the_caller() {
    require_env!();
    let t = TestDir::new("test");
    let smtpd = Smtpd::start(t.join("smtpd"), None, &[]);
    let closed = ClosedPort::new();
    let log = alerter(&t.join("log"));
    let (ok, err) = in_system(async {
        let good = notifier(config(smtpd.port), &t.join("state-a"), &log);
        let bad = notifier(config(closed.port), &t.join("state-b"), &log);
        let ask = || SendTest {
            cluster: "c1".into(),
            by: "root".into(),
        };
        (
            good.send(ask()).await.unwrap(),
            bad.send(ask()).await.unwrap(),
        )
    });
    assert_eq!(ok, Ok(format!("127.0.0.1:{}", smtpd.port)));
    assert_eq!(
        err,
        Err(format!("connection to 127.0.0.1:{} refused", closed.port))
    );
    let got = smtpd.received();
    assert_eq!(got.len(), 1);
    let body = String::from_utf8_lossy(&got[0].body()).into_owned();
    assert!(body.contains("asked for by root"), "{body}");
    // Test mails never touch the spool.
    assert!(spool_files(&t.join("state-b")).is_empty());
}

#[test]
fn own_events_are_never_mailed() {
    require_env!();
    let t = TestDir::new("loop");
    let closed = ClosedPort::new();
    let log = alerter(&t.join("log"));
    let state = t.join("state");
    in_system(async {
        let mail = notifier(config(closed.port), &state, &log);
        let mut own = notify("report mail not sent: ...");
        own.alert.module = "alert".into();
        own.alert.event_id = 6;
        mail.send(own).await.unwrap();
        // A later mail is spooled; the alert 6 before it never was.
        mail.send(notify("real")).await.unwrap();
        wait_events(&log.log, 6, 1).await;
    });
    let files = spool_files(&state);
    assert_eq!(files.len(), 1);
    assert!(fs::read_to_string(&files[0])
        .unwrap()
        .contains("rc 32: real"));
}

#[test]
fn new_settings_reach_the_waiting_mails() {
    require_env!();
    let t = TestDir::new("reconf");
    let closed = ClosedPort::new();
    let smtpd = Smtpd::start(t.join("smtpd"), None, &[]);
    let log = alerter(&t.join("log"));
    let state = t.join("state");
    let (queue_before, queue_after) = in_system(async {
        // A long pause: only the new settings can bring the mail out early.
        let mail = MailNotifier::new(config(closed.port), &state, log.clone())
            .unwrap()
            .with_retry(RetryPolicy {
                first: Duration::from_secs(3600),
                max: Duration::from_secs(3600),
            })
            .start();
        mail.send(notify("waiting")).await.unwrap();
        wait_events(&log.log, 6, 1).await;
        let before = mail.send(GetMailQueue).await.unwrap();
        mail.send(Reconfigure {
            config: config(smtpd.port),
            password: None,
        })
        .await
        .unwrap();
        wait_events(&log.log, 5, 1).await;
        (before, mail.send(GetMailQueue).await.unwrap())
    });
    assert_eq!(queue_before.waiting, 1);
    assert_eq!(queue_before.failures, 1);
    assert_eq!(
        queue_before.last_cause,
        Some(format!("connection to 127.0.0.1:{} refused", closed.port))
    );
    assert_eq!(queue_after, MailQueue::default());
    assert_eq!(smtpd.received().len(), 1);
    assert!(spool_files(&state).is_empty());
}

#[test]
fn a_burst_goes_in_order_once_each_over_few_connections() {
    let t = TestDir::new("burst");
    let peer = Peer::start(|_| "250 2.0.0 queued");
    let log = alerter(&t.join("log"));
    let state = t.join("state");
    const N: usize = 300;
    let sent = in_system(async {
        let mail = notifier(config(peer.port), &state, &log);
        // All at once, as the router hands over a burst of alerts.
        for n in 1..=N {
            mail.do_send(notify(&format!("burst {n:04}")));
        }
        wait_events(&log.log, 5, N).await
    });
    // MailSent once per mail, in order, each after its file was removed.
    assert_eq!(sent.len(), N);
    for (i, text) in sent.iter().enumerate() {
        assert!(text.ends_with(&format!("burst {:04}]", i + 1)), "{text}");
    }
    assert!(spool_files(&state).is_empty());
    let taken = peer.taken();
    assert_eq!(burst_numbers(&taken), (1..=N).collect::<Vec<_>>());
    // Sessions of many mails, not a connection per mail. (How many
    // depends on how the spool batches fell; one in the usual case.)
    assert!(
        peer.connections() <= 10,
        "{} connections for {N} mails",
        peer.connections()
    );
}

#[test]
fn a_mail_refused_mid_session_is_retried_and_the_later_ones_wait_their_turn() {
    let t = TestDir::new("midsession");
    // Mail 3 is refused once, after its data: the session's third mail.
    let refused = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let once = refused.clone();
    let peer = Peer::start(move |data| {
        if data.contains("burst 0003") && !once.swap(true, Ordering::SeqCst) {
            "451 4.3.0 Try again later"
        } else {
            "250 2.0.0 queued"
        }
    });
    let log = alerter(&t.join("log"));
    let state = t.join("state");
    let (sent, failed) = in_system(async {
        let mail = notifier(config(peer.port), &state, &log);
        for n in 1..=5 {
            mail.do_send(notify(&format!("burst {n:04}")));
        }
        let sent = wait_events(&log.log, 5, 5).await;
        (sent, mail_events(&log.log, 6).await)
    });
    assert!(refused.load(Ordering::SeqCst));
    // The failure is mail 3's, raised once; mails 1 and 2, accepted before
    // it on the same connection, are done and not sent again.
    assert_eq!(
        failed,
        [format!(
            "report mail not sent: SMTP error from 127.0.0.1:{} at DATA: 451 4.3.0 Try again later: [rc 32: burst 0003]",
            peer.port
        )]
    );
    let order: Vec<String> = sent
        .iter()
        .map(|m| m.rsplit("[rc 32: ").next().unwrap().to_string())
        .collect();
    assert_eq!(
        order,
        [
            "burst 0001]",
            "burst 0002]",
            "burst 0003]",
            "burst 0004]",
            "burst 0005]"
        ]
    );
    let taken = peer.taken();
    assert_eq!(burst_numbers(&taken), [1, 2, 3, 4, 5]);
    assert_eq!(taken[0].connection, taken[1].connection);
    // After the failure (and its pause), a new connection: mails 4 and 5
    // waited for mail 3 and went after it.
    assert!(taken[2].connection > taken[1].connection);
    assert!(spool_files(&state).is_empty());
}
