//! `smtp` monitor: an SMTP server greets and answers `NOOP`.
//!
//! Each check connects, reads the greeting (2xx), sends `NOOP` (2xx
//! expected) and then `QUIT`, waiting briefly for its reply without
//! requiring one. Multi-line replies (`250-...` up to `250 ...`) are read
//! whole; a reply is judged by its first line.

use std::cell::Cell;
use std::ops::Range;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub use understudy_brain::monitor::smtp::SmtpConfig;

use super::tcp::{excerpt, Endpoint};
pub use super::tcp::{Failure, Fault, Step};
use super::{BuildProbe, Check, CheckFuture, Probe, ProbeBuild, ProbeEnv};

/// Longest reply line kept whole (RFC 5321 allows 512 bytes with CRLF); the
/// rest of a longer line is skipped.
const LINE_BUF: usize = 512;
/// Characters of a reply quoted in an error.
const QUOTE: usize = 100;
/// How long to wait for the reply to `QUIT` before closing anyway.
const QUIT_WAIT: Duration = Duration::from_millis(250);

impl BuildProbe for SmtpConfig {
    fn probe(&self, _build: &ProbeBuild) -> Result<Box<dyn Probe>, String> {
        Ok(Box::new(SmtpProbe::new(self)))
    }
}

/// Holds a short SMTP session at each check.
pub struct SmtpProbe {
    endpoint: Endpoint,
}

impl SmtpProbe {
    pub fn new(config: &SmtpConfig) -> SmtpProbe {
        SmtpProbe {
            endpoint: Endpoint::new(&config.host, config.port),
        }
    }
}

impl Probe for SmtpProbe {
    fn check(&mut self, _env: &ProbeEnv) -> CheckFuture {
        let endpoint = self.endpoint.clone();
        Box::pin(async move {
            match session(&endpoint, &Cell::new(Step::Resolve)).await {
                Ok(()) => Check::Normal,
                Err(e) => Check::Error(e.text),
            }
        })
    }
}

impl SmtpProbe {
    /// One check with its cause told apart (the Internet Server Agent's
    /// `clp_smtpmon`); `step` follows the work, for a caller's timeout.
    pub async fn attempt(&self, step: &Cell<Step>) -> Result<(), Failure> {
        session(&self.endpoint, step).await
    }

    /// `host:port` of the server, for messages.
    pub fn target(&self) -> String {
        self.endpoint.to_string()
    }
}

async fn session(endpoint: &Endpoint, step: &Cell<Step>) -> Result<(), Failure> {
    let mut stream = endpoint.connect(step).await?;
    converse(&mut stream, step).await
}

/// The exchange on a connected stream (generic, so that the fuzz target
/// `smtp_reply` can play the server's side from memory).
pub(crate) async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    step: &Cell<Step>,
) -> Result<(), Failure> {
    let mut replies = Replies::new();
    step.set(Step::Receive);
    replies.expect_2xx(stream, "greeting").await?;
    step.set(Step::Send);
    send(stream, "NOOP", b"NOOP\r\n").await?;
    step.set(Step::Receive);
    replies.expect_2xx(stream, "NOOP").await?;
    // A polite goodbye; the checks are done, so nothing here can fail.
    if stream.write_all(b"QUIT\r\n").await.is_ok() {
        let _ = tokio::time::timeout(QUIT_WAIT, replies.expect_2xx(stream, "QUIT")).await;
    }
    Ok(())
}

async fn send<S: AsyncWrite + Unpin>(
    stream: &mut S,
    step: &str,
    command: &[u8],
) -> Result<(), Failure> {
    stream
        .write_all(command)
        .await
        .map_err(|e| Failure::io(Step::Send, &e, format!("{step}: send")))
}

/// Reads reply lines from the server, keeping what arrived beyond them.
struct Replies {
    buf: [u8; LINE_BUF],
    /// Unread bytes: `buf[start..end]`.
    start: usize,
    end: usize,
    /// The rest of an overlong line is still to be skipped.
    skipping: bool,
}

impl Replies {
    fn new() -> Replies {
        Replies {
            buf: [0; LINE_BUF],
            start: 0,
            end: 0,
            skipping: false,
        }
    }

    /// Reads one whole reply; an error unless its code is 2xx. The error
    /// names `step` and quotes the reply's first line.
    async fn expect_2xx<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
        step: &str,
    ) -> Result<(), Failure> {
        let mut first = true;
        loop {
            let range = self
                .next_line(stream, !first)
                .await
                .map_err(|e| Failure::new(e.fault, format!("{step}: {}", e.text)))?;
            let line = &self.buf[range];
            let Some(more) = reply_line(line) else {
                return Err(Failure::new(
                    Fault::BadReply,
                    format!("{step}: malformed reply \"{}\"", excerpt(line, QUOTE)),
                ));
            };
            if first && line[0] != b'2' {
                // reply_line checked the three digits.
                let code = std::str::from_utf8(&line[..3])
                    .ok()
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
                return Err(Failure::new(
                    Fault::Status(code),
                    format!("{step}: {}", excerpt(line, QUOTE)),
                ));
            }
            first = false;
            if !more {
                return Ok(());
            }
        }
    }

    /// The next line (without its line end), as a range of `buf`. A line
    /// longer than the buffer comes cut to the buffer's length.
    /// `mid_reply`: earlier lines of the same reply were read.
    async fn next_line<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
        mid_reply: bool,
    ) -> Result<Range<usize>, Failure> {
        loop {
            let unread = &self.buf[self.start..self.end];
            if let Some(pos) = unread.iter().position(|&b| b == b'\n') {
                let line = self.start..self.start + pos;
                self.start += pos + 1;
                if std::mem::take(&mut self.skipping) {
                    continue;
                }
                let cr = line.end > line.start && self.buf[line.end - 1] == b'\r';
                return Ok(line.start..line.end - usize::from(cr));
            }
            if self.skipping {
                self.start = 0;
                self.end = 0;
            } else if self.start == 0 && self.end == self.buf.len() {
                // Overlong: hand out its start, skip the rest.
                self.skipping = true;
                self.start = self.end;
                return Ok(0..self.buf.len());
            } else if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            match stream.read(&mut self.buf[self.end..]).await {
                Ok(0) if mid_reply || self.end > self.start => {
                    return Err(Failure::new(
                        Fault::Closed,
                        "connection closed in mid-reply",
                    ))
                }
                Ok(0) => {
                    return Err(Failure::new(
                        Fault::Closed,
                        "connection closed without a reply",
                    ))
                }
                Ok(n) => self.end += n,
                Err(e) => return Err(Failure::io(Step::Receive, &e, "read".into())),
            }
        }
    }
}

/// Checks `NNN text` / `NNN-text` / `NNN`; `Some(true)` when more lines of
/// the reply follow.
fn reply_line(line: &[u8]) -> Option<bool> {
    let code = line.get(..3)?;
    if !code.iter().all(u8::is_ascii_digit) {
        return None;
    }
    match line.get(3) {
        None | Some(b' ') => Some(false),
        Some(b'-') => Some(true),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use tokio::io::{AsyncBufReadExt, BufReader};
    use tokio::net::TcpListener;

    /// One step of a scripted server: send text, or read one command line
    /// and check it.
    #[derive(Clone, Copy)]
    enum Act {
        Say(&'static str),
        Expect(&'static str),
        /// Keep the connection open without answering.
        Hold,
    }
    use Act::{Expect, Hold, Say};

    /// Serves one connection by `script`, then closes. Panics (failing the
    /// test through the returned handle) on an unexpected command.
    async fn peer(script: &'static [Act]) -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = tokio::spawn(async move {
            let (conn, _) = listener.accept().await.unwrap();
            let mut conn = BufReader::new(conn);
            for step in script {
                match *step {
                    Say(text) => {
                        conn.get_mut().write_all(text.as_bytes()).await.unwrap();
                        tokio::task::yield_now().await;
                    }
                    Expect(command) => {
                        let mut line = String::new();
                        conn.read_line(&mut line).await.unwrap();
                        assert_eq!(line, format!("{command}\r\n"));
                    }
                    Hold => tokio::time::sleep(Duration::from_secs(3600)).await,
                }
            }
        });
        (addr, handle)
    }

    async fn check(addr: SocketAddr) -> Check {
        let config = SmtpConfig {
            host: addr.ip().to_string(),
            port: addr.port(),
        };
        SmtpProbe::new(&config).check(&ProbeEnv::default()).await
    }

    #[test]
    fn reply_lines() {
        assert_eq!(reply_line(b"220 mail ESMTP"), Some(false));
        assert_eq!(reply_line(b"250-PIPELINING"), Some(true));
        assert_eq!(reply_line(b"250"), Some(false));
        assert_eq!(reply_line(b"25"), None);
        assert_eq!(reply_line(b"2x0 hi"), None);
        assert_eq!(reply_line(b"250_x"), None);
    }

    #[tokio::test]
    async fn good_server_is_normal() {
        let (addr, served) = peer(&[
            Say("220 mail.test ESMTP\r\n"),
            Expect("NOOP"),
            Say("250 2.0.0 Ok\r\n"),
            Expect("QUIT"),
            Say("221 2.0.0 Bye\r\n"),
        ])
        .await;
        assert_eq!(check(addr).await, Check::Normal);
        served.await.unwrap();
    }

    #[tokio::test]
    async fn multi_line_replies_in_pieces() {
        let (addr, served) = peer(&[
            Say("220-mail.test ESMTP\r\n22"),
            Say("0-second line\r"),
            Say("\n220 ready\r\n"),
            Expect("NOOP"),
            Say("250-one\r\n"),
            Say("250 two\r\n"),
            Expect("QUIT"),
            Say("221 Bye\r\n"),
        ])
        .await;
        assert_eq!(check(addr).await, Check::Normal);
        served.await.unwrap();
    }

    #[tokio::test]
    async fn overlong_lines_are_skipped() {
        const LONG: &str = concat!(
            "220-",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "\r\n",
        );
        let (addr, served) = peer(&[
            Say(LONG),
            Say("220 ready\r\n"),
            Expect("NOOP"),
            Say("250 ok\r\n"),
            Expect("QUIT"),
        ])
        .await;
        assert_eq!(check(addr).await, Check::Normal);
        served.await.unwrap();

        const LONG_ERROR: &str = concat!(
            "554 ",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "\r\n",
        );
        let (addr, _) = peer(&[Say(LONG_ERROR)]).await;
        let expected = format!("greeting: {}...", &LONG_ERROR[..QUOTE]);
        assert_eq!(check(addr).await, Check::Error(expected));
    }

    #[tokio::test]
    async fn refusing_greeting_is_an_error() {
        let (addr, _) = peer(&[Say("421 4.3.2 Service not available\r\n")]).await;
        assert_eq!(
            check(addr).await,
            Check::Error("greeting: 421 4.3.2 Service not available".into())
        );
        let (addr, _) = peer(&[Say("554-mail.test no service\r\n"), Say("554 go away\r\n")]).await;
        assert_eq!(
            check(addr).await,
            Check::Error("greeting: 554-mail.test no service".into())
        );
    }

    #[tokio::test]
    async fn failed_noop_is_an_error() {
        let (addr, _) = peer(&[
            Say("220 mail.test\r\n"),
            Expect("NOOP"),
            Say("502 5.5.2 Error: command not recognized\r\n"),
        ])
        .await;
        assert_eq!(
            check(addr).await,
            Check::Error("NOOP: 502 5.5.2 Error: command not recognized".into())
        );
    }

    #[tokio::test]
    async fn causes_are_told_apart() {
        let attempt = |addr: SocketAddr| async move {
            let probe = SmtpProbe::new(&SmtpConfig {
                host: addr.ip().to_string(),
                port: addr.port(),
            });
            let step = Cell::new(Step::Resolve);
            let fault = probe.attempt(&step).await.unwrap_err().fault;
            (fault, step.get())
        };
        let (addr, _) = peer(&[Say("220 mail.test\r\n"), Expect("NOOP"), Say("502 no\r\n")]).await;
        assert_eq!(attempt(addr).await, (Fault::Status(502), Step::Receive));
        let (addr, _) = peer(&[Say("HTTP/1.1 400 Bad\r\n")]).await;
        assert_eq!(attempt(addr).await, (Fault::BadReply, Step::Receive));
        let (addr, _) = peer(&[Say("220 mail.test\r\n"), Expect("NOOP")]).await;
        assert_eq!(attempt(addr).await, (Fault::Closed, Step::Receive));
        let closed = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        assert_eq!(
            attempt(closed).await,
            (
                Fault::Io {
                    step: Step::Connect,
                    code: Some(libc::ECONNREFUSED)
                },
                Step::Connect
            )
        );
    }

    #[tokio::test]
    async fn closing_early_is_an_error() {
        let (addr, _) = peer(&[Say("220 mail.test\r\n"), Expect("NOOP")]).await;
        assert_eq!(
            check(addr).await,
            Check::Error("NOOP: connection closed without a reply".into())
        );
        let (addr, _) = peer(&[Say("220-mail.test\r\n")]).await;
        assert_eq!(
            check(addr).await,
            Check::Error("greeting: connection closed in mid-reply".into())
        );
        let (addr, _) = peer(&[Say("220 mail.te")]).await;
        assert_eq!(
            check(addr).await,
            Check::Error("greeting: connection closed in mid-reply".into())
        );
    }

    #[tokio::test]
    async fn not_smtp_is_an_error() {
        let (addr, _) = peer(&[Say("HTTP/1.1 400 Bad Request\r\n")]).await;
        assert_eq!(
            check(addr).await,
            Check::Error("greeting: malformed reply \"HTTP/1.1 400 Bad Request\"".into())
        );
    }

    #[tokio::test]
    async fn missing_quit_reply_is_fine() {
        let (addr, _) = peer(&[
            Say("220 mail.test\r\n"),
            Expect("NOOP"),
            Say("250 ok\r\n"),
            Expect("QUIT"),
            Hold,
        ])
        .await;
        let started = std::time::Instant::now();
        assert_eq!(check(addr).await, Check::Normal);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn closed_port_is_an_error() {
        let addr = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        assert_eq!(
            check(addr).await,
            Check::Error(format!("connect to {addr}: connection refused"))
        );
    }
}
