//! SMTP sessions: a connection with the primary server, or with the
//! alternative when the primary cannot be reached at all, over which mails
//! go one after the other (MAIL FROM, RCPT TO, DATA for each). When the
//! server offers PIPELINING (RFC 2920), a mail's MAIL FROM, RCPT TOs and
//! DATA go in one write and their replies are read as they come, then the
//! data: two round trips a mail instead of four.
//!
//! The steps are driven one by one (over mail-send's client) so that each
//! failure can name its step, and every wait is bounded by the response
//! wait: name resolution, connecting, the greeting (mail-send's plain
//! connect would wait for it forever) and every reply. Opening a session
//! and each mail are bounded once more as a whole, as a safety net.
//!
//! The alternative is used only when resolving or connecting to the
//! primary fails: once the primary has answered, an error (authentication,
//! a refused sender, a silent server) is the answer, and trying elsewhere
//! could deliver a mail the configuration meant to go one way only.
//!
//! A session is kept by the caller between mails ([`send`] hands it back
//! after a mail was accepted). A server may end a connection after some
//! mails of its own accord: a mail whose first step (MAIL FROM) fails on a
//! reused connection is tried once more on a new one, and only that
//! attempt counts. Any other failure ends the session and is the mail's.

use crate::model::host::io_text;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use mail_send::smtp::message::Parameters;
use mail_send::smtp::AssertReply;
use mail_send::{Credentials, SmtpClient};
use smtp_proto::response::parser::ResponseReceiver;
use smtp_proto::{Response, AUTH_CRAM_MD5, AUTH_LOGIN, EXT_PIPELINING};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::compose::Rendered;
use super::config::{Secret, SmtpAuth};

/// Characters of a server reply quoted in a cause.
const QUOTE: usize = 160;
/// Waits in opening a session: resolve, connect, greeting, EHLO, up to
/// three for AUTH, and slack.
const OPEN_WAITS: u32 = 8;
/// Waits in one mail besides the per-recipient ones: MAIL, DATA twice, and
/// slack.
const MAIL_WAITS: u32 = 4;

/// An SMTP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    /// `host:port`, `[v6]:port` for IPv6 literals.
    pub fn label(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Credentials for the primary server.
#[derive(Debug, Clone)]
pub struct Login {
    /// Login, CramMd5 or Auto (None never gets here).
    pub mode: SmtpAuth,
    pub user: String,
    pub password: Secret,
}

/// Everything one attempt needs, owned (it runs in a spawned future).
#[derive(Debug, Clone)]
pub struct Delivery {
    pub primary: Endpoint,
    pub alternative: Option<Endpoint>,
    /// Used with the primary only.
    pub login: Option<Login>,
    pub wait: Duration,
    /// Our name in EHLO.
    pub helo: String,
}

/// Why one server did not take the mail.
#[derive(Debug)]
pub(crate) struct Failure {
    cause: String,
    /// The server answered (false: it could not be resolved or connected to).
    reached: bool,
    /// At the mail's first step (MAIL FROM): nothing of it was taken, and
    /// on a reused connection a new one may do better.
    first_step: bool,
}

fn unreached(cause: String) -> Failure {
    Failure {
        cause,
        reached: false,
        first_step: false,
    }
}

fn reached(cause: String) -> Failure {
    Failure {
        cause,
        reached: true,
        first_step: false,
    }
}

/// Sends `mail` in a session of its own: `Ok` names the server that took
/// it, `Err` is the cause. (`understudy alert test --mail`.)
pub async fn deliver(d: &Delivery, mail: &Rendered) -> Result<String, String> {
    let (result, session) = send(d, None, mail).await;
    if let Some(session) = session {
        session.close(d.wait).await;
    }
    result
}

/// Sends `mail` over `session` when one is open, else over a new one: `Ok`
/// names the server that took it, `Err` is the cause. The session comes
/// back, still open, when the mail was accepted; after a failure it is
/// gone (closed without a goodbye).
pub async fn send(
    d: &Delivery,
    session: Option<Session>,
    mail: &Rendered,
) -> (Result<String, String>, Option<Session>) {
    if let Some(mut s) = session {
        match s.transact(d, mail).await {
            Ok(()) => return (Ok(s.server.clone()), Some(s)),
            Err(f) if f.first_step => tracing::debug!(
                "report mail: {} after {} mail(s) on this connection; trying a new one",
                f.cause,
                s.mails
            ),
            Err(f) => return (Err(f.cause), None),
        }
    }
    let mut s = match Session::open(d).await {
        Ok(s) => s,
        Err(cause) => return (Err(cause), None),
    };
    match s.transact(d, mail).await {
        Ok(()) => (Ok(s.server.clone()), Some(s)),
        Err(f) => (Err(f.cause), None),
    }
}

/// The stream of a session: a TCP connection, or a server played from
/// memory (tests, the fuzz target).
pub trait Link: AsyncRead + AsyncWrite + Unpin {
    /// Acknowledge what arrives at once rather than with the next data
    /// sent (TCP_QUICKACK, which the kernel drops again after a while).
    fn ack_at_once(&self) {}
}

impl Link for TcpStream {
    /// Pipelined replies: the client sends nothing until the last one has
    /// come, so the kernel would delay its ACK (40 ms); a server that
    /// writes each reply on its own, with Nagle's algorithm on, holds the
    /// next one back until that ACK, and every mail would wait 40 ms.
    fn ack_at_once(&self) {
        let _ = self.set_quickack(true);
    }
}

/// A connection with an SMTP server, greeted (and logged in): the mails of
/// a session go over it one after the other.
pub struct Session<S: Link = TcpStream> {
    client: SmtpClient<S>,
    /// The server's label.
    server: String,
    /// Mails accepted over it so far.
    mails: usize,
    /// The server offers PIPELINING.
    pipelining: bool,
}

impl Session {
    /// Opens a session with the primary server, or with the alternative
    /// when the primary cannot be resolved or connected to; `Err` is the
    /// cause (both causes when the alternative failed too).
    pub async fn open(d: &Delivery) -> Result<Session, String> {
        let primary = open_with(&d.primary, d.login.as_ref(), d).await;
        match (primary, &d.alternative) {
            (Ok(s), _) => Ok(s),
            (Err(f), Some(alt)) if !f.reached => {
                tracing::warn!(
                    "report mail: {}; trying the alternative server {}",
                    f.cause,
                    alt.label()
                );
                open_with(alt, None, d)
                    .await
                    .map_err(|g| format!("{}; alternative server: {}", f.cause, g.cause))
            }
            (Err(f), _) => Err(f.cause),
        }
    }
}

/// A session with one server, bounded as a whole.
async fn open_with(ep: &Endpoint, login: Option<&Login>, d: &Delivery) -> Result<Session, Failure> {
    let bound = d.wait.saturating_mul(OPEN_WAITS);
    let opening = async {
        let addrs = resolve(ep, d.wait).await.map_err(unreached)?;
        let stream = connect(ep, &addrs, d.wait).await.map_err(unreached)?;
        Session::greet(stream, &ep.label(), login, d).await
    };
    match tokio::time::timeout(bound, opening).await {
        Ok(r) => r,
        Err(_) => Err(no_end(&ep.label(), bound)),
    }
}

fn no_end(server: &str, bound: Duration) -> Failure {
    reached(format!(
        "no end of the exchange with {server} within {} s",
        bound.as_secs()
    ))
}

impl<S: Link> Session<S> {
    /// The server that took the mails (`host:port`).
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Mails accepted in this session so far.
    pub fn mails(&self) -> usize {
        self.mails
    }

    /// The greeting, EHLO and the login on a connected stream with
    /// `server` (its label).
    pub(crate) async fn greet(
        stream: S,
        server: &str,
        login: Option<&Login>,
        d: &Delivery,
    ) -> Result<Session<S>, Failure> {
        let server = server.to_string();
        let mut client = SmtpClient {
            stream,
            timeout: d.wait,
        };
        let step = |name| stepper(name, &server, d.wait);

        // The greeting: mail-send reads it without a bound of its own.
        tokio::time::timeout(d.wait, client.read())
            .await
            .map_err(|_| mail_send::Error::Timeout)
            .and_then(|r| r)
            .and_then(|r| r.assert_positive_completion())
            .map_err(step("greeting"))?;
        let mut caps = client.ehlo(&d.helo).await.map_err(step("EHLO"))?;

        if let Some(login) = login {
            let offered = caps.auth_mechanisms;
            let Some(mechanism) = choose_mechanism(login.mode, offered) else {
                return Err(reached(format!(
                    "authentication failed (user {}): {} does not offer {}",
                    login.user,
                    server,
                    wanted_text(login.mode)
                )));
            };
            // Leave mail-send only the mechanism chosen: on its own it would
            // take the "strongest" by its order, which puts LOGIN first.
            caps.auth_mechanisms = mechanism;
            let credentials = Credentials::new(login.user.as_str(), login.password.expose());
            client
                .authenticate(&credentials, &caps)
                .await
                .map_err(|e| reached(auth_failure(e, &login.user, &server, d.wait)))?;
        }
        Ok(Session {
            client,
            server,
            mails: 0,
            pipelining: caps.has_capability(EXT_PIPELINING),
        })
    }

    /// One mail: MAIL FROM, RCPT TO for each recipient, DATA; bounded as
    /// a whole. `Ok` once the server accepted it (250 after the data).
    pub(crate) async fn transact(&mut self, d: &Delivery, mail: &Rendered) -> Result<(), Failure> {
        let waits = MAIL_WAITS.saturating_add(mail.to.len() as u32);
        let bound = d.wait.saturating_mul(waits);
        let server = self.server.clone();
        let client = &mut self.client;
        let pipelining = self.pipelining;
        let step = |name| stepper(name, &server, d.wait);
        let steps = async {
            if pipelining {
                return pipelined(client, mail, &server, d.wait).await;
            }
            client
                .mail_from(&mail.from, &Parameters::default())
                .await
                .map_err(|e| Failure {
                    first_step: true,
                    ..step("MAIL FROM")(e)
                })?;
            for rcpt in &mail.to {
                client
                    .rcpt_to(rcpt, &Parameters::default())
                    .await
                    .map_err(step("RCPT TO"))?;
            }
            client.data(&mail.data).await.map_err(step("DATA"))?;
            Ok(())
        };
        match tokio::time::timeout(bound, steps).await {
            Ok(Ok(())) => {
                self.mails += 1;
                Ok(())
            }
            Ok(Err(f)) => Err(f),
            Err(_) => Err(no_end(&self.server, bound)),
        }
    }

    /// Ends the session: QUIT, waiting at most `wait` for the answer. The
    /// mails are accepted already; how the goodbye goes changes nothing.
    pub async fn close(self, wait: Duration) {
        let _ = tokio::time::timeout(wait, self.client.quit()).await;
    }
}

/// One mail with PIPELINING: MAIL FROM, each RCPT TO and DATA in one
/// write, their replies read as they come (each read bounded by `wait`);
/// the first reply that refuses is the failure, at its step. Then the data
/// in one write, and its reply.
async fn pipelined<S: Link>(
    client: &mut SmtpClient<S>,
    mail: &Rendered,
    server: &str,
    wait: Duration,
) -> Result<(), Failure> {
    let step = |name| stepper(name, server, wait);
    let mut commands = format!("MAIL FROM:<{}>\r\n", mail.from);
    let mut steps = vec!["MAIL FROM"];
    for rcpt in &mail.to {
        commands.push_str(&format!("RCPT TO:<{rcpt}>\r\n"));
        steps.push("RCPT TO");
    }
    commands.push_str("DATA\r\n");
    steps.push("DATA");
    // Nothing of this mail is taken until its data is: a failure before
    // then is at its first step, as far as a reused connection goes.
    let at = |i: usize, e: mail_send::Error| Failure {
        first_step: i == 0,
        ..step(steps[i])(e)
    };
    let sent = tokio::time::timeout(wait, async {
        client.stream.write_all(commands.as_bytes()).await?;
        client.stream.flush().await
    })
    .await;
    match sent {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(at(0, e.into())),
        Err(_) => return Err(at(0, mail_send::Error::Timeout)),
    }
    client.stream.ack_at_once();
    let (replies, stopped) = read_replies(&mut client.stream, steps.len(), wait).await;
    let last = steps.len() - 1;
    let received = replies.len();
    for (i, reply) in replies.into_iter().enumerate() {
        let good = if i == last {
            reply.code == 354
        } else {
            (200..300).contains(&reply.code)
        };
        if !good {
            return Err(at(i, mail_send::Error::UnexpectedReply(reply)));
        }
    }
    if let Some(e) = stopped {
        return Err(at(received.min(last), e));
    }
    tokio::time::timeout(wait, async {
        client.stream.write_all(&with_end(&mail.data)).await?;
        client.stream.flush().await?;
        client.read().await
    })
    .await
    .map_err(|_| mail_send::Error::Timeout)
    .and_then(|r| r)
    .and_then(|r| r.assert_positive_completion())
    .map_err(step("DATA"))
}

/// Reads `n` replies as they come, each read bounded by `wait`: the
/// replies read, and what stopped the reading before the `n`th.
async fn read_replies<S: AsyncRead + Unpin>(
    stream: &mut S,
    n: usize,
    wait: Duration,
) -> (Vec<Response<String>>, Option<mail_send::Error>) {
    let mut replies = Vec::with_capacity(n);
    let mut parser = ResponseReceiver::default();
    let mut buf = [0u8; 1024];
    while replies.len() < n {
        let read = match tokio::time::timeout(wait, stream.read(&mut buf)).await {
            Ok(Ok(0)) => return (replies, Some(mail_send::Error::UnparseableReply)),
            Ok(Ok(read)) => read,
            Ok(Err(e)) => return (replies, Some(e.into())),
            Err(_) => return (replies, Some(mail_send::Error::Timeout)),
        };
        let mut bytes = buf[..read].iter();
        while replies.len() < n {
            match parser.parse(&mut bytes) {
                Ok(reply) => {
                    replies.push(reply);
                    parser.reset();
                }
                Err(smtp_proto::Error::NeedsMoreData { .. }) => break,
                Err(_) => return (replies, Some(mail_send::Error::UnparseableReply)),
            }
        }
    }
    (replies, None)
}

/// The mail's data as mail-send's `write_message` sends it, in one piece:
/// a dot that follows CR or LF doubled (transparency), then CRLF . CRLF.
fn with_end(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 64 + 5);
    let mut after_line_end = false;
    for &b in data {
        if b == b'.' && after_line_end {
            out.push(b'.');
            after_line_end = false;
        } else {
            after_line_end = b == b'\n' || b == b'\r';
        }
        out.push(b);
    }
    out.extend_from_slice(b"\r\n.\r\n");
    out
}

/// A failed step's error as a [`Failure`] naming the step.
fn stepper<'a>(
    name: &'static str,
    server: &'a str,
    wait: Duration,
) -> impl FnOnce(mail_send::Error) -> Failure + 'a {
    move |e| reached(describe(e, name, server, wait))
}

/// A session of `mails` on a connected stream with `server` (its label),
/// ended by QUIT. Generic, so that the fuzz target `smtp_reply` and the
/// tests can play the server from memory.
pub(crate) async fn converse<S: Link>(
    stream: S,
    server: &str,
    login: Option<&Login>,
    d: &Delivery,
    mails: &[Rendered],
) -> Result<(), Failure> {
    let mut session = Session::greet(stream, server, login, d).await?;
    for mail in mails {
        session.transact(d, mail).await?;
    }
    session.close(d.wait).await;
    Ok(())
}

/// The mechanism to use, if the server offers one that fits.
fn choose_mechanism(mode: SmtpAuth, offered: u64) -> Option<u64> {
    let wanted = match mode {
        SmtpAuth::Login => AUTH_LOGIN,
        SmtpAuth::CramMd5 => AUTH_CRAM_MD5,
        // CRAM-MD5 first: the password never crosses the network.
        SmtpAuth::Auto | SmtpAuth::None => {
            if offered & AUTH_CRAM_MD5 != 0 {
                AUTH_CRAM_MD5
            } else {
                AUTH_LOGIN
            }
        }
    };
    (offered & wanted != 0).then_some(wanted)
}

fn wanted_text(mode: SmtpAuth) -> &'static str {
    match mode {
        SmtpAuth::Login => "AUTH LOGIN",
        SmtpAuth::CramMd5 => "AUTH CRAM-MD5",
        SmtpAuth::Auto | SmtpAuth::None => "AUTH CRAM-MD5 or LOGIN",
    }
}

fn auth_failure(e: mail_send::Error, user: &str, server: &str, wait: Duration) -> String {
    match e {
        mail_send::Error::AuthenticationFailed(r) | mail_send::Error::UnexpectedReply(r) => {
            format!("authentication failed (user {user}): {}", reply_text(&r))
        }
        mail_send::Error::Auth(_) | mail_send::Error::Base64(_) => format!(
            "authentication failed (user {user}): the challenge of {server} was not understood"
        ),
        mail_send::Error::UnsupportedAuthMechanism => {
            format!("authentication failed (user {user}): no usable mechanism at {server}")
        }
        other => describe(other, "AUTH", server, wait),
    }
}

/// A failed step as a cause for the `MailFailed` event.
fn describe(e: mail_send::Error, step: &str, server: &str, wait: Duration) -> String {
    match e {
        mail_send::Error::Timeout => {
            format!(
                "no response from {server} within {} s ({step})",
                wait.as_secs()
            )
        }
        mail_send::Error::UnexpectedReply(r) | mail_send::Error::AuthenticationFailed(r) => {
            format!("SMTP error from {server} at {step}: {}", reply_text(&r))
        }
        mail_send::Error::Io(e) => {
            format!(
                "send/receive error with {server} at {step}: {}",
                io_text(&e)
            )
        }
        mail_send::Error::UnparseableReply => {
            format!("{server} closed the connection or sent a malformed reply ({step})")
        }
        other => format!("{step} with {server}: {other}"),
    }
}

/// `550 5.7.1 Relaying denied`: code, enhanced code when there is one, the
/// text on one line, cut to a readable length.
fn reply_text(r: &Response<String>) -> String {
    let mut out = r.code.to_string();
    if r.esc != [0, 0, 0] {
        out.push_str(&format!(" {}.{}.{}", r.esc[0], r.esc[1], r.esc[2]));
    }
    let text: String = r
        .message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if !text.is_empty() {
        out.push(' ');
        match text.char_indices().nth(QUOTE) {
            Some((i, _)) => {
                out.push_str(&text[..i]);
                out.push_str("...");
            }
            None => out.push_str(&text),
        }
    }
    out
}

async fn resolve(ep: &Endpoint, wait: Duration) -> Result<Vec<SocketAddr>, String> {
    let bare = ep
        .host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(&ep.host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, ep.port)]);
    }
    let host = ep.host.as_str();
    let lookup = tokio::time::timeout(wait, tokio::net::lookup_host((host, ep.port))).await;
    match lookup {
        Ok(Ok(addrs)) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                Err(format!(
                    "name resolution of SMTP server {host} failed: no address"
                ))
            } else {
                Ok(addrs)
            }
        }
        Ok(Err(e)) => Err(format!(
            "name resolution of SMTP server {host} failed: {}",
            io_text(&e)
        )),
        Err(_) => Err(format!(
            "name resolution of SMTP server {host} timed out after {} s",
            wait.as_secs()
        )),
    }
}

/// Connects to the first address that accepts; the cause is the last
/// address's.
async fn connect(ep: &Endpoint, addrs: &[SocketAddr], wait: Duration) -> Result<TcpStream, String> {
    let label = ep.label();
    let mut cause = format!("connection to {label} failed: no address");
    for addr in addrs {
        cause = match tokio::time::timeout(wait, async {
            let stream = TcpStream::connect(addr).await?;
            // SMTP is a ping-pong of short lines: without this, Nagle's
            // algorithm and the server's delayed ACK add ~40 ms to steps.
            stream.set_nodelay(true)?;
            Ok::<_, std::io::Error>(stream)
        })
        .await
        {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
                format!("connection to {label} refused")
            }
            Ok(Err(e)) => format!("connection to {label} failed: {}", io_text(&e)),
            Err(_) => format!("connection to {label} timed out after {} s", wait.as_secs()),
        };
    }
    Err(cause)
}

/// Our name for EHLO: the host name when it looks like one.
pub fn helo_name() -> String {
    let name = nix::unistd::gethostname()
        .ok()
        .and_then(|n| n.into_string().ok())
        .unwrap_or_default();
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if ok {
        name
    } else {
        "localhost".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smtp_proto::AUTH_PLAIN;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    #[test]
    fn mechanism_choice() {
        let both = AUTH_LOGIN | AUTH_CRAM_MD5 | AUTH_PLAIN;
        assert_eq!(choose_mechanism(SmtpAuth::Auto, both), Some(AUTH_CRAM_MD5));
        assert_eq!(
            choose_mechanism(SmtpAuth::Auto, AUTH_LOGIN | AUTH_PLAIN),
            Some(AUTH_LOGIN)
        );
        assert_eq!(choose_mechanism(SmtpAuth::Auto, AUTH_PLAIN), None);
        assert_eq!(choose_mechanism(SmtpAuth::Login, both), Some(AUTH_LOGIN));
        assert_eq!(choose_mechanism(SmtpAuth::CramMd5, AUTH_LOGIN), None);
    }

    #[test]
    fn reply_texts() {
        let r = Response {
            code: 550,
            esc: [5, 7, 1],
            message: "Relaying\r\ndenied".to_string(),
        };
        assert_eq!(reply_text(&r), "550 5.7.1 Relaying denied");
        let r = Response {
            code: 553,
            esc: [0, 0, 0],
            message: "x".repeat(400),
        };
        assert!(reply_text(&r).ends_with("..."));
        assert!(reply_text(&r).len() < 200);
    }

    #[test]
    fn labels() {
        let ep = |h: &str| Endpoint {
            host: h.into(),
            port: 25,
        };
        assert_eq!(ep("mail.test").label(), "mail.test:25");
        assert_eq!(ep("::1").label(), "[::1]:25");
        assert_eq!(ep("[::1]").label(), "[::1]:25");
    }

    #[tokio::test]
    async fn a_reply_that_never_ends_is_refused() {
        // A greeting of endless continuation lines: smtp-proto keeps at
        // most 4 KiB of a reply, so memory stays bounded and the server is
        // told apart as one that sent a malformed reply.
        let mut replies = Vec::new();
        while replies.len() <= 64 * 1024 {
            replies.extend_from_slice(b"220-mail.test says hello, and more\r\n");
        }
        let script = crate::fuzzing::Script::new(&replies, 1000);
        let f = converse(
            script.stream(),
            "mail.test:25",
            None,
            &delivery(25),
            &[mail()],
        )
        .await
        .unwrap_err();
        assert!(f.reached);
        assert_eq!(
            f.cause,
            "mail.test:25 closed the connection or sent a malformed reply (greeting)"
        );
        // A whole session, its replies in pieces of three bytes.
        let script = crate::fuzzing::Script::new(
            b"220 hi\r\n\xff250 ok\r\n\xff250 ok\r\n\xff250 ok\r\n\xff354 go\r\n\xff250 queued\r\n\xff221 bye\r\n",
            3,
        );
        converse(
            script.stream(),
            "mail.test:25",
            None,
            &delivery(25),
            &[mail()],
        )
        .await
        .unwrap();
    }

    fn delivery(port: u16) -> Delivery {
        Delivery {
            primary: Endpoint {
                host: "127.0.0.1".into(),
                port,
            },
            alternative: None,
            login: None,
            wait: Duration::from_secs(1),
            helo: "test.local".into(),
        }
    }

    fn mail() -> Rendered {
        Rendered {
            from: "a@x.test".into(),
            to: vec!["b@x.test".into()],
            data: b"Subject: t\r\n\r\nbody\r\n".to_vec(),
        }
    }

    /// A scripted server for one connection: a reply for each line read
    /// (the first reply is the greeting); keeps reading the mail's data
    /// after 354 until the lone dot.
    async fn scripted(replies: &'static [&'static str]) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (conn, _) = listener.accept().await.unwrap();
            let mut conn = BufReader::new(conn);
            let mut in_data = false;
            for (i, reply) in replies.iter().enumerate() {
                // Before every reply but the greeting: one command, or the
                // whole mail up to its lone dot after a 354.
                if i > 0 {
                    loop {
                        let mut line = String::new();
                        if conn.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if !in_data || line == ".\r\n" {
                            break;
                        }
                    }
                }
                conn.get_mut().write_all(reply.as_bytes()).await.unwrap();
                in_data = reply.starts_with("354");
            }
            // Hold the connection open, answering nothing more.
            let mut rest = String::new();
            while conn.read_line(&mut rest).await.unwrap_or(0) > 0 {}
        });
        port
    }

    /// A scripted server for several connections, one after the other,
    /// each with its script as in [`scripted`]; a connection ends when its
    /// script does. Records the commands (not the mail data) of each
    /// connection.
    struct Peer {
        port: u16,
        commands: std::sync::Arc<std::sync::Mutex<Vec<Vec<String>>>>,
    }

    impl Peer {
        async fn start(connections: Vec<&'static [&'static str]>) -> Peer {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let commands = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let log = commands.clone();
            tokio::spawn(async move {
                for replies in connections {
                    let (conn, _) = listener.accept().await.unwrap();
                    log.lock().unwrap().push(Vec::new());
                    let mut conn = BufReader::new(conn);
                    let mut in_data = false;
                    for (i, reply) in replies.iter().enumerate() {
                        if i > 0 {
                            loop {
                                let mut line = String::new();
                                if conn.read_line(&mut line).await.unwrap_or(0) == 0 {
                                    break;
                                }
                                if !in_data {
                                    let command = line.trim_end().to_string();
                                    log.lock().unwrap().last_mut().unwrap().push(command);
                                    break;
                                }
                                if line == ".\r\n" {
                                    break;
                                }
                            }
                        }
                        if conn.get_mut().write_all(reply.as_bytes()).await.is_err() {
                            break;
                        }
                        in_data = reply.starts_with("354");
                    }
                }
            });
            Peer { port, commands }
        }

        /// The commands of each connection so far, their verbs only.
        fn verbs(&self) -> Vec<Vec<String>> {
            self.commands
                .lock()
                .unwrap()
                .iter()
                .map(|c| {
                    c.iter()
                        .map(|l| l.split([' ', ':']).next().unwrap().to_string())
                        .collect()
                })
                .collect()
        }
    }

    const GREET: [&str; 2] = ["220 hi\r\n", "250 ok\r\n"];
    const ONE_MAIL: [&str; 4] = [
        "250 sender ok\r\n",
        "250 rcpt ok\r\n",
        "354 go\r\n",
        "250 queued\r\n",
    ];

    /// `parts` one after the other, as one connection's script.
    fn script(parts: &[&[&'static str]]) -> &'static [&'static str] {
        Vec::leak(parts.concat())
    }

    fn mail_n(n: usize) -> Rendered {
        Rendered {
            data: format!("Subject: t\r\n\r\nmail {n}\r\n").into_bytes(),
            ..mail()
        }
    }

    #[tokio::test]
    async fn several_mails_over_one_connection() {
        let peer = Peer::start(vec![script(&[
            &GREET,
            &ONE_MAIL,
            &ONE_MAIL,
            &ONE_MAIL,
            &["221 bye\r\n"],
        ])])
        .await;
        let d = delivery(peer.port);
        let label = format!("127.0.0.1:{}", peer.port);
        let mut session = None;
        for n in 1..=3 {
            let (result, s) = send(&d, session, &mail_n(n)).await;
            assert_eq!(result, Ok(label.clone()));
            session = s;
        }
        let session = session.expect("still open");
        assert_eq!(session.mails(), 3);
        assert_eq!(session.server(), label);
        session.close(d.wait).await;
        let mail = ["MAIL", "RCPT", "DATA"];
        let expected: Vec<&str> = std::iter::once("EHLO")
            .chain(mail.iter().copied().cycle().take(9))
            .chain(["QUIT"])
            .collect();
        assert_eq!(peer.verbs(), [expected]);
    }

    #[tokio::test]
    async fn a_failure_mid_session_is_that_mails_and_ends_the_session() {
        let peer = Peer::start(vec![
            // Mail 1 accepted, mail 2 refused at RCPT TO.
            script(&[
                &GREET,
                &ONE_MAIL,
                &["250 sender ok\r\n", "550 5.7.1 Relaying denied\r\n"],
            ]),
            // The next attempt opens a new connection.
            script(&[&GREET, &ONE_MAIL, &["221 bye\r\n"]]),
        ])
        .await;
        let d = delivery(peer.port);
        let label = format!("127.0.0.1:{}", peer.port);
        let (first, session) = send(&d, None, &mail_n(1)).await;
        assert_eq!(first, Ok(label.clone()));
        let (second, session) = send(&d, session, &mail_n(2)).await;
        assert_eq!(
            second,
            Err(format!(
                "SMTP error from {label} at RCPT TO: 550 5.7.1 Relaying denied"
            ))
        );
        assert!(session.is_none(), "a failure ends the session");
        let (again, session) = send(&d, session, &mail_n(2)).await;
        assert_eq!(again, Ok(label));
        session.unwrap().close(d.wait).await;
        assert_eq!(
            peer.verbs(),
            [
                vec!["EHLO", "MAIL", "RCPT", "DATA", "MAIL", "RCPT"],
                vec!["EHLO", "MAIL", "RCPT", "DATA", "QUIT"],
            ]
        );
    }

    /// Two mails to a server that takes one per connection (421 at the
    /// next MAIL FROM, and it hangs up): both are sent, the second over a
    /// new session, without a failure. The peer, for what each test
    /// checks of the conversation.
    async fn two_mails_to_a_server_that_ends_after_one(greet: &'static [&'static str]) -> Peer {
        let peer = Peer::start(vec![
            script(&[
                greet,
                &ONE_MAIL,
                &["421 4.7.0 Too many mails on this connection\r\n"],
            ]),
            script(&[greet, &ONE_MAIL, &["221 bye\r\n"]]),
        ])
        .await;
        let d = delivery(peer.port);
        let label = format!("127.0.0.1:{}", peer.port);
        let (first, session) = send(&d, None, &mail_n(1)).await;
        assert_eq!(first, Ok(label.clone()));
        let (second, session) = send(&d, session, &mail_n(2)).await;
        assert_eq!(second, Ok(label));
        let session = session.unwrap();
        assert_eq!(session.mails(), 1, "a new session");
        session.close(d.wait).await;
        peer
    }

    #[tokio::test]
    async fn a_connection_the_server_ends_is_replaced_without_a_failure() {
        let peer = two_mails_to_a_server_that_ends_after_one(&GREET).await;
        assert_eq!(
            peer.verbs(),
            [
                vec!["EHLO", "MAIL", "RCPT", "DATA", "MAIL"],
                vec!["EHLO", "MAIL", "RCPT", "DATA", "QUIT"],
            ]
        );
        // On a new connection the same refusal is the mail's failure.
        let peer = Peer::start(vec![script(&[&GREET, &["421 4.7.0 Try again later\r\n"]])]).await;
        assert_eq!(
            deliver(&delivery(peer.port), &mail()).await,
            Err(format!(
                "SMTP error from 127.0.0.1:{} at MAIL FROM: 421 4.7.0 Try again later",
                peer.port
            ))
        );
    }

    const GREET_PIPELINING: [&str; 2] = ["220 hi\r\n", "250-hi\r\n250 PIPELINING\r\n"];

    #[tokio::test]
    async fn several_mails_pipelined() {
        // The peer answers line by line; the client sends MAIL, RCPT and
        // DATA in one go and takes their replies as they come.
        let peer = Peer::start(vec![script(&[
            &GREET_PIPELINING,
            &ONE_MAIL,
            &ONE_MAIL,
            &["221 bye\r\n"],
        ])])
        .await;
        let d = delivery(peer.port);
        let (first, session) = send(&d, None, &mail_n(1)).await;
        assert!(first.is_ok(), "{first:?}");
        assert!(session.as_ref().unwrap().pipelining);
        let (second, session) = send(&d, session, &mail_n(2)).await;
        assert!(second.is_ok(), "{second:?}");
        session.unwrap().close(d.wait).await;
        assert_eq!(
            peer.verbs(),
            [vec![
                "EHLO", "MAIL", "RCPT", "DATA", "MAIL", "RCPT", "DATA", "QUIT"
            ]]
        );
    }

    #[tokio::test]
    async fn pipelined_refusals_name_their_step() {
        let peer = Peer::start(vec![
            script(&[
                &GREET_PIPELINING,
                &[
                    "250 sender ok\r\n",
                    "550 5.7.1 Relaying denied\r\n",
                    "554 5.5.1 No valid recipients\r\n",
                ],
            ]),
            script(&[
                &GREET_PIPELINING,
                &[
                    "553 5.1.8 Sender address rejected\r\n",
                    "503 5.5.1 Need MAIL\r\n",
                    "503 5.5.1 Need RCPT\r\n",
                ],
            ]),
            script(&[
                &GREET_PIPELINING,
                &[
                    "250 sender ok\r\n",
                    "250 rcpt ok\r\n",
                    "451 4.3.0 Not now\r\n",
                ],
            ]),
        ])
        .await;
        let d = delivery(peer.port);
        let label = format!("127.0.0.1:{}", peer.port);
        assert_eq!(
            deliver(&d, &mail()).await,
            Err(format!(
                "SMTP error from {label} at RCPT TO: 550 5.7.1 Relaying denied"
            ))
        );
        assert_eq!(
            deliver(&d, &mail()).await,
            Err(format!(
                "SMTP error from {label} at MAIL FROM: 553 5.1.8 Sender address rejected"
            ))
        );
        assert_eq!(
            deliver(&d, &mail()).await,
            Err(format!(
                "SMTP error from {label} at DATA: 451 4.3.0 Not now"
            ))
        );
    }

    #[tokio::test]
    async fn a_pipelined_connection_the_server_ends_is_replaced() {
        // The RCPT TO and DATA sent with the second MAIL FROM are never
        // answered.
        let peer = two_mails_to_a_server_that_ends_after_one(&GREET_PIPELINING).await;
        assert_eq!(peer.verbs().len(), 2);
    }

    #[tokio::test]
    async fn pipelined_replies_together_or_in_pieces() {
        // The replies to MAIL, RCPT and DATA in one turn, read whole or
        // three bytes at a time; a silent server after DATA's 354 fails
        // the data step.
        let replies = b"220 hi\r\n\xff250-hi\r\n250 PIPELINING\r\n\xff250 ok\r\n250 ok\r\n354 go\r\n\xff250 queued\r\n\xff221 bye\r\n";
        for piece in [0, 3] {
            let script = crate::fuzzing::Script::new(replies, piece);
            converse(
                script.stream(),
                "mail.test:25",
                None,
                &delivery(25),
                &[mail()],
            )
            .await
            .unwrap();
        }
        let script = crate::fuzzing::Script::new(
            b"220 hi\r\n\xff250-hi\r\n250 PIPELINING\r\n\xff250 ok\r\n250 ok\r\n",
            0,
        );
        let f = converse(
            script.stream(),
            "mail.test:25",
            None,
            &delivery(25),
            &[mail()],
        )
        .await
        .unwrap_err();
        assert_eq!(
            f.cause,
            "mail.test:25 closed the connection or sent a malformed reply (DATA)"
        );
    }

    impl Link for tokio::io::DuplexStream {}

    #[tokio::test]
    async fn data_in_one_piece_as_mail_send_writes_it() {
        let samples: [&[u8]; 4] = [
            b"Subject: t\r\n\r\nbody\r\n",
            b"Subject: t\r\n\r\n.leading dot\r\n..two\r\nend.\r\n.\r\n",
            b"no line end at the end",
            b"",
        ];
        for data in samples {
            let (a, mut b) = tokio::io::duplex(4096);
            let mut client = SmtpClient {
                stream: a,
                timeout: Duration::from_secs(1),
            };
            client.write_message(data).await.unwrap();
            drop(client);
            let mut written = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut b, &mut written)
                .await
                .unwrap();
            assert_eq!(
                with_end(data),
                written,
                "{:?}",
                String::from_utf8_lossy(data)
            );
        }
    }

    #[tokio::test]
    async fn good_exchange() {
        let port = scripted(&[
            "220 hi\r\n",
            "250 ok\r\n",
            "250 sender ok\r\n",
            "250 rcpt ok\r\n",
            "354 go\r\n",
            "250 queued\r\n",
            "221 bye\r\n",
        ])
        .await;
        assert_eq!(
            deliver(&delivery(port), &mail()).await,
            Ok(format!("127.0.0.1:{port}"))
        );
    }

    #[tokio::test]
    async fn refused_steps_name_their_code() {
        let port = scripted(&[
            "220 hi\r\n",
            "250 ok\r\n",
            "553 5.1.8 Sender address rejected\r\n",
        ])
        .await;
        assert_eq!(
            deliver(&delivery(port), &mail()).await,
            Err(format!(
                "SMTP error from 127.0.0.1:{port} at MAIL FROM: 553 5.1.8 Sender address rejected"
            ))
        );
        let port = scripted(&["554 no service\r\n"]).await;
        assert_eq!(
            deliver(&delivery(port), &mail()).await,
            Err(format!(
                "SMTP error from 127.0.0.1:{port} at greeting: 554 no service"
            ))
        );
    }

    #[tokio::test]
    async fn silence_after_a_command() {
        // Greets, then never answers EHLO.
        let port = scripted(&["220 hi\r\n"]).await;
        assert_eq!(
            deliver(&delivery(port), &mail()).await,
            Err(format!(
                "no response from 127.0.0.1:{port} within 1 s (EHLO)"
            ))
        );
    }

    #[tokio::test]
    async fn refused_connection_and_names() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        assert_eq!(
            deliver(&delivery(port), &mail()).await,
            Err(format!("connection to 127.0.0.1:{port} refused"))
        );
        let mut d = delivery(25);
        d.primary.host = "no-such-host.invalid".into();
        let cause = deliver(&d, &mail()).await.unwrap_err();
        assert!(
            cause.starts_with("name resolution of SMTP server no-such-host.invalid "),
            "{cause}"
        );
    }

    #[tokio::test]
    async fn alternative_only_when_unreachable() {
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        // Primary unreachable, alternative unreachable too: both causes.
        let mut d = delivery(closed);
        d.alternative = Some(Endpoint {
            host: "127.0.0.1".into(),
            port: closed,
        });
        assert_eq!(
            deliver(&d, &mail()).await,
            Err(format!(
                "connection to 127.0.0.1:{closed} refused; alternative server: connection to 127.0.0.1:{closed} refused"
            ))
        );
        // Primary answers with an error: the alternative is not tried (it
        // would refuse, which would show in the cause).
        let port = scripted(&["220 hi\r\n", "250 ok\r\n", "550 go away\r\n"]).await;
        d.primary.port = port;
        assert_eq!(
            deliver(&d, &mail()).await,
            Err(format!(
                "SMTP error from 127.0.0.1:{port} at MAIL FROM: 550 go away"
            ))
        );
    }
}
